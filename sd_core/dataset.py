"""The data-set plugin contract (the public face of :mod:`sd_core.plugins.dataset`)."""

from sd_core.plugins.dataset import (
    TEN_TWENTY_19,
    DatasetPlugin,
    Event,
    Recording,
    Subject,
    events_of,
    remember_events,
)

__all__ = ["TEN_TWENTY_19", "DatasetPlugin", "Event", "Recording", "Subject", "events_of", "remember_events"]
