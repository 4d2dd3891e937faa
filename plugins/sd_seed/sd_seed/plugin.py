"""Hooks of sd-seed: the SEED-V data set and its tasks."""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.dataset import TEN_TWENTY_19, DatasetPlugin
from sd_core.specs import CLASSIFICATION, REGRESSION, TaskSpec

NAME = "seed"
#: SEED-V emotion ids 0…4
EMOTIONS = ("disgust", "fear", "sad", "neutral", "happy")
GENDERS = ("F", "M")


class SeedDataset(DatasetPlugin):
    name = NAME
    title = "SEED-V: emotion EEG, 16 subjects × 3 sessions × 15 film clips (Neuroscan CNT, 1000 Hz)"
    channels = (*TEN_TWENTY_19, "Oz")
    columns = ("emotion", "session", "trial", "recording")


@hookimpl
def sd_datasets():
    return [SeedDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("emotion", NAME, CLASSIFICATION, EMOTIONS, description="emotion of the film clip"),
        TaskSpec("gender", NAME, CLASSIFICATION, GENDERS, description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("seed_condition", NAME, CLASSIFICATION,
                 tuple(f"{e}_{g}" for e in EMOTIONS for g in GENDERS), ("emotion", "gender"),
                 "emotion × gender"),
    ]
