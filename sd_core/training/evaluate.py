"""Evaluation of a classifier on a split: loss and per-task metrics over every row.

With several processes each evaluates every world-th batch and the outputs are gathered, so the
figures are those of the whole split.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from sd_core.data.images import ProcessedImages
from sd_core.data.tasks import ResolvedTask
from sd_core.training.losses import task_losses
from sd_core.training.metrics import compute_metrics


@torch.no_grad()
def predict(acc, model, data: ProcessedImages, batch_size: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Row indices and model outputs (on the CPU) for every row of ``data``."""
    was_training = model.training
    model.eval()
    world, rank = (acc.num_processes, acc.process_index) if acc is not None else (1, 0)
    batches = [list(range(i, min(i + batch_size, len(data)))) for i in range(0, len(data), batch_size)]
    device = acc.device if acc is not None else torch.device("cpu")
    idx, outs = [], []
    for indices in batches[rank::world]:
        b = data.__getitems__(indices)
        if acc is not None:
            with acc.autocast():
                out = model(b["image"].to(device))
        else:
            out = model(b["image"])
        idx.append(b["index"])
        outs.append({k: v.float().cpu() for k, v in out.items()})
    if world > 1:
        from accelerate.utils import gather_object

        parts = gather_object([(idx, outs)])
        idx = [i for p in parts for i in p[0]]
        outs = [o for p in parts for o in p[1]]
    model.train(was_training)
    order = torch.cat(idx).argsort()
    names = outs[0].keys()
    return torch.cat(idx)[order], {k: torch.cat([o[k] for o in outs])[order] for k in names}


def evaluate(acc, model, data: ProcessedImages, tasks: Sequence[ResolvedTask], batch_size: int,
             registry: Any, wanted: Sequence[str] = ()) -> dict[str, float]:
    """``{"loss": …, "<task>/loss": …, "<task>/<metric>": …}`` over the whole split."""
    index, outputs = predict(acc, model, data, batch_size)
    targets = {k: v[index] for k, v in data.targets.items()}
    losses = task_losses(outputs, targets)
    result: dict[str, float] = {"loss": float(sum(losses.values()))}
    result.update({f"{k}/loss": float(v) for k, v in losses.items()})
    result.update(compute_metrics(registry, tasks, outputs, targets, wanted))
    return result
