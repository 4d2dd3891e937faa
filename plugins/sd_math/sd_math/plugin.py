"""Hooks of sd-math: the EEGMAT data set and its tasks."""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.dataset import TEN_TWENTY_19, DatasetPlugin
from sd_core.specs import CLASSIFICATION, REGRESSION, TaskSpec

NAME = "math"


class MathDataset(DatasetPlugin):
    name = NAME
    title = "PhysioNet EEGMAT: EEG during mental arithmetic (36 subjects, EDF, 500 Hz)"
    channels = TEN_TWENTY_19
    columns = ("doing_math", "count_quality", "recording")


@hookimpl
def sd_datasets():
    return [MathDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("math_activity", NAME, CLASSIFICATION, ("0", "1"), ("doing_math",),
                 "0 rest, 1 mental arithmetic"),
        TaskSpec("math_condition", NAME, CLASSIFICATION, ("0_F", "0_M", "1_F", "1_M"),
                 ("doing_math", "gender"), "activity × gender"),
        TaskSpec("count_quality", NAME, CLASSIFICATION, ("0", "1"),
                 description="0 bad, 1 good counting during the arithmetic task"),
    ]
