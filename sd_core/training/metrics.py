"""Per-task metrics from metric plugins (``sd metrics``), computed on whole splits.

Classification metrics get logits (N, classes) and class indices; regression metrics get
values in the task's own unit (standardisation undone). Rows without a target are left out.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import torch

from sd_core.data.images import is_missing
from sd_core.data.tasks import ResolvedTask
from sd_core.plugins.specs import CLASSIFICATION


def metric_names(registry: Any, task: ResolvedTask, wanted: Sequence[str] = ()) -> list[str]:
    """Metrics that apply to the task's kind (only ``wanted`` ones when given)."""
    names = [m.name for m in registry.metrics.values() if m.kind == task.kind]
    return [n for n in names if not wanted or n in wanted]


def compute_metrics(registry: Any, tasks: Sequence[ResolvedTask], outputs: Mapping[str, torch.Tensor],
                    targets: Mapping[str, torch.Tensor], wanted: Sequence[str] = ()) -> dict[str, float]:
    """``{"<task>/<metric>": value}`` over all rows (NaN where a metric cannot be computed)."""
    result: dict[str, float] = {}
    for t in tasks:
        y = targets[t.name]
        keep = ~is_missing(y)
        pred = outputs[t.name][keep].float()
        y = y[keep]
        result[f"{t.name}/n"] = int(keep.sum())
        if t.kind != CLASSIFICATION:
            pred = pred * t.std + t.mean
            y = y * t.std + t.mean
        for name in metric_names(registry, t, wanted):
            spec = registry.metric(name)
            value = math.nan
            if len(y) >= (2 if t.kind != CLASSIFICATION else 1):
                try:
                    with warnings.catch_warnings():  # torchmetrics warns about absent classes
                        warnings.simplefilter("ignore")
                        metric = spec.build(t.num_classes if t.kind == CLASSIFICATION else None)
                        metric.update(pred, y)
                        value = float(metric.compute())
                except (ValueError, RuntimeError):
                    value = math.nan
            result[f"{t.name}/{name}"] = value
    return result
