"""Per-task losses with missing targets masked out.

Classification: cross-entropy over the rows that have a class. Regression: mean squared error on
the standardised target. The total is the weighted sum of the tasks that have any target in the
batch.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from sd_core.data.images import is_missing


def task_losses(outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss per task; a task without any target in the batch contributes 0 (with a gradient)."""
    out = {}
    for name, pred in outputs.items():
        y = targets[name]
        keep = ~is_missing(y)
        if not bool(keep.any()):
            out[name] = pred.sum() * 0.0
        elif y.dtype.is_floating_point:
            out[name] = F.mse_loss(pred[keep].float(), y[keep])
        else:
            out[name] = F.cross_entropy(pred[keep].float(), y[keep])
    return out


def total_loss(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    return sum(float(weights.get(k, 1.0)) * v for k, v in losses.items())
