"""Hooks of sd-parkinsons: the ds004584 data set and its tasks."""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.dataset import TEN_TWENTY_19, DatasetPlugin
from sd_core.specs import CLASSIFICATION, REGRESSION, TaskSpec

NAME = "parkinsons"


class ParkinsonsDataset(DatasetPlugin):
    name = NAME
    title = "OpenNeuro ds004584: resting-state EEG, Parkinson's vs controls (BIDS, EEGLAB, 500 Hz)"
    channels = (*TEN_TWENTY_19, "Oz")
    columns = ("recording",)


@hookimpl
def sd_datasets():
    return [ParkinsonsDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("health", NAME, CLASSIFICATION, ("H", "PD"), description="H control, PD Parkinson's"),
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("parkinsons_condition", NAME, CLASSIFICATION, ("H_F", "H_M", "PD_F", "PD_M"),
                 ("health", "gender"), "health × gender"),
    ]
