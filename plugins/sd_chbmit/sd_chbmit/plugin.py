"""Hooks of sd-chbmit: the CHB-MIT data set and its tasks."""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin
from sd_core.specs import CLASSIFICATION, REGRESSION, TaskSpec

NAME = "chbmit"
#: Bipolar double-banana derivations present in most CHB-MIT recordings (20 of the 23).
DERIVATIONS = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
    "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    "FZ-CZ", "CZ-PZ", "T7-FT9", "FT10-T8",
)


class ChbmitDataset(DatasetPlugin):
    name = NAME
    title = "CHB-MIT: scalp EEG of children with seizures, 24 cases (EDF, 256 Hz, bipolar)"
    channels = DERIVATIONS
    columns = ("seizure", "recording")


@hookimpl
def sd_datasets():
    return [ChbmitDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("seizure", NAME, CLASSIFICATION, ("0", "1"), description="0 no seizure, 1 seizure"),
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("mit_condition", NAME, CLASSIFICATION, ("0_F", "0_M", "1_F", "1_M"),
                 ("seizure", "gender"), "seizure × gender"),
    ]
