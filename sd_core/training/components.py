"""What a training run is built from: its data sets, balanced sampling groups, optimizer and learning-rate schedule."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import torch

from sd_core.config.experiment import Experiment
from sd_core.data.images import ProcessedImages
from sd_core.data.overlap import check_splits
from sd_core.data.sampling import dataset_class_groups
from sd_core.data.select import read_rows, sources_for
from sd_core.data.sources import Source
from sd_core.data.tasks import check_trainable, resolve_tasks, standardised
from sd_core.errors import SdError
from sd_core.plugins.specs import CLASSIFICATION


@dataclass
class TrainData:
    tasks: list
    train: ProcessedImages
    val: ProcessedImages | None
    test: ProcessedImages | None
    sources: list[Source]
    split_check: dict | None = None  # sd_core.data.overlap.check_splits: recorded in metrics.json


def load_data(exp: Experiment, registry: Any, project: Any) -> TrainData:
    """Rows of every split, tasks resolved and checked, image datasets built."""
    d = exp["data"]
    paths = {k: exp.path(v) for k, v in d["paths"].items()}
    sources = sources_for(d["datasets"], paths, project, registry)
    train_rows = read_rows(sources, d["train_split"])
    extra = [Source(exp.path(p)) for p in d["extra_train"]]
    train_rows += read_rows(extra, "train", allowed=d["datasets"])
    if not train_rows:
        raise SdError(f"the {d['train_split']!r} split of {', '.join(d['datasets'])} has no rows")
    val_rows = read_rows(sources, d["val_split"]) if d["val_split"] else []
    test_rows = read_rows(sources, d["test_split"]) if d["test_split"] else []
    _check_not_empty(exp, train_rows, {"val_split": val_rows, "test_split": test_rows})
    split_check = check_splits({"train": train_rows, "val": val_rows, "test": test_rows}, d["allow_overlap"],
                               str(exp.source))
    tasks = resolve_tasks(d["tasks"], d["datasets"], registry, train_rows + val_rows + test_rows)
    check_trainable(tasks, train_rows, d["train_split"])
    tasks = [standardised(t, train_rows) for t in tasks]
    size, cache = d["image_size"] or None, d["cache_mb"]
    train = ProcessedImages(train_rows, tasks, size, cache)
    val = ProcessedImages(val_rows, tasks, train.size, cache) if val_rows else None
    test = ProcessedImages(test_rows, tasks, train.size, cache) if test_rows else None
    return TrainData(tasks, train, val, test, sources, split_check)


def _check_not_empty(exp: Experiment, train_rows: list, named: dict[str, list]) -> None:
    """A split the experiment names must have rows (a data set of one subject has only train):
    say so, rather than fail later for want of a checkpoint."""
    d = exp["data"]
    subjects = len({(r.get("dataset"), r.get("subject")) for r in train_rows})
    for key, rows in named.items():
        if d[key] and not rows:
            raise exp.error("data", key, f"= {d[key]!r}: that split of {', '.join(d['datasets'])} has no rows "
                            f"(the train split has {subjects} subject{'s' if subjects != 1 else ''}); preprocess "
                            f"with more subjects, or set {key} = \"\""
                            + (' and [training] eval_strategy = "none"' if key == "val_split" else ""))


def balance_groups(exp: Experiment, data: TrainData) -> list | None:
    d = exp["data"]
    if not d["balanced"]:
        return None
    name = d["balance_task"] or next((t.name for t in data.tasks if t.kind == CLASSIFICATION), "")
    if not name:
        return None
    if name not in data.train.targets:
        raise exp.error("data", "balance_task", f"= {name!r} is not one of [data] tasks "
                        f"({', '.join(d['tasks'])})")
    from sd_core.meta import double_weighting

    warning = double_weighting([r["_root"] for r in data.train.rows], d["train_split"])
    if warning:  # a meta set weighted already: say so rather than weigh twice
        sys.stderr.write(f"warning: {exp.source}: [data] balanced: {warning}\n")
        return None
    return dataset_class_groups(data.train.rows, next(t for t in data.tasks if t.name == name))


def make_optimizer(params, t: dict):
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    cls = torch.optim.AdamW if t["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=t["lr"], weight_decay=t["weight_decay"])


def make_schedule(optimizer, t: dict, total_steps: int):
    warm, kind = t["warmup_steps"], t["schedule"]

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
