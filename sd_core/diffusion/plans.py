"""Which labels to generate: ``--condition`` parsing, ``--balanced``, training-like draws, grid rows.

A plan is a list of items ``{"dataset": name, "labels": {condition: raw value}}``; a raw value is
a class value (``"PD"``), a number as text for a regression task (``"62"``), or ``""`` for null
(the condition is left to the model: the unconditional branch for that condition).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sd_core.data.labels import LabelSpec
from sd_core.data.tasks import DATASET_TASK
from sd_core.errors import SdError


def parse_condition(text: str, spec: LabelSpec) -> dict[str, str]:
    """``gender=F,health=PD`` → {"gender": "F", "health": "PD"}, checked against the run."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            raise SdError(f"--condition {text!r}: write NAME=VALUE pairs separated by commas, "
                          f"e.g. {_example(spec)}")
        name, value = (s.strip() for s in part.split("=", 1))
        task = spec.task(name)
        if task.kind == "classification":
            if value not in task.classes:
                raise SdError(f"--condition {text!r}: {name} = {value!r} is not one of its classes; "
                              f"allowed: {', '.join(task.classes)}")
        else:
            try:
                x = float(value)
            except ValueError:
                raise SdError(f"--condition {text!r}: {name} must be a number, got {value!r}") from None
            if not math.isfinite(x):
                raise SdError(f"--condition {text!r}: {name} must be a finite number")
        if name in out:
            raise SdError(f"--condition {text!r}: {name} is given twice")
        out[name] = value
    if not out:
        raise SdError(f"--condition {text!r} is empty; e.g. {_example(spec)}")
    return out


def _example(spec: LabelSpec) -> str:
    parts = [f"{t.name}={t.classes[0]}" for t in spec.categorical[:2]]
    return ",".join(parts or [f"{spec.conditions[0].name}=60"])


def _cat_key(combo: Mapping[str, Any], spec: LabelSpec) -> tuple[str, ...]:
    return tuple(combo["labels"].get(t.name, "") for t in spec.categorical)


def _matching(spec: LabelSpec, labels: Mapping[str, str]) -> list[dict]:
    return [c for c in spec.combos
            if all(c["labels"].get(k, "") == v for k, v in labels.items() if k in c["labels"])]


def _draw_value(rng: random.Random, combos: Sequence[dict], name: str) -> str:
    counts: Counter = Counter()
    for c in combos:
        counts.update(c.get("values", {}).get(name, {}))
    if not counts:
        return ""
    values = sorted(counts)
    return rng.choices(values, weights=[counts[v] for v in values])[0]


def _dataset_for(spec: LabelSpec, combos: Sequence[dict], dataset: str | None) -> str:
    if dataset:
        return dataset
    by: Counter = Counter()
    for c in combos:
        by[c["dataset"]] += c["count"]
    return by.most_common(1)[0][0] if by else spec.datasets[0]


def _complete(spec: LabelSpec, labels: dict[str, str], rng: random.Random, dataset: str | None) -> dict:
    """Fill the regression conditions not given from the training rows with these labels, of
    the row's data set (a ``dataset`` condition, ``dataset``, or the most common one): a row of
    one data set never takes the age of another data set's subject."""
    cat = {k: v for k, v in labels.items() if k in {t.name for t in spec.categorical}}
    match = _matching(spec, cat) or spec.combos
    ds = labels.get(DATASET_TASK) or _dataset_for(spec, match, dataset)
    own = [c for c in match if c["dataset"] == ds] or [c for c in spec.combos if c["dataset"] == ds]
    out = dict(labels)
    for t in spec.continuous:
        if t.name not in out:
            out[t.name] = _draw_value(rng, own or match, t.name)
    for t in spec.categorical:
        out.setdefault(t.name, "")
    return {"dataset": ds, "labels": out}


def balanced_combos(spec: LabelSpec) -> list[dict[str, str]]:
    """Every complete combination of class values seen in training, in sorted order."""
    if not spec.categorical:
        raise SdError("--balanced needs a model conditioned on at least one classification task; "
                      "this one is conditioned on " + ", ".join(t.name for t in spec.conditions))
    keys = sorted({_cat_key(c, spec) for c in spec.combos if all(_cat_key(c, spec))})
    return [dict(zip((t.name for t in spec.categorical), k)) for k in keys]


def plan(spec: LabelSpec, n: int, conditions: Sequence[Mapping[str, str]] = (), balanced: bool = False,
         seed: int = 0, dataset: str | None = None) -> list[dict]:
    """The labels of every image to generate.

    conditions: n images per condition; balanced: n images per complete class combination;
    neither: n images with label combinations drawn as often as they occur in training.
    """
    if n < 1:
        raise SdError("--n must be at least 1")
    if dataset and dataset not in spec.datasets:
        raise SdError(f"--dataset {dataset!r} is not a data set of this run; allowed: {', '.join(spec.datasets)}")
    rng = random.Random(seed)
    if conditions and balanced:
        raise SdError("give either --condition or --balanced, not both")
    if balanced:
        conditions = balanced_combos(spec)
    items = []
    if conditions:
        for cond in conditions:
            items += [_complete(spec, dict(cond), rng, dataset) for _ in range(n)]
        return items
    combos = spec.combos
    weights = [c["count"] for c in combos]
    for _ in range(n):
        c = rng.choices(combos, weights=weights)[0]
        labels = {k: v for k, v in c["labels"].items() if v != ""}
        items.append(_complete(spec, labels, rng, dataset or c["dataset"]))
    return items


def grid_rows(spec: LabelSpec, max_rows: int = 12) -> list[tuple[str, dict[str, str]]]:
    """(row label, labels) for a sample grid: one row per class combination seen in training.

    Regression conditions take the median of the combination's values; a model conditioned only
    on regression tasks gets rows at the 10th, 50th and 90th percentile.
    """
    rows = []
    if spec.categorical:
        for cat in balanced_combos(spec)[:max_rows]:
            labels = dict(cat)
            match = _matching(spec, cat)
            for t in spec.continuous:
                labels[t.name] = _quantile(match, t.name, 0.5)
            rows.append((_label_text(labels), labels))
        return rows
    for q in (0.1, 0.5, 0.9):
        labels = {t.name: _quantile(spec.combos, t.name, q) for t in spec.continuous}
        rows.append((_label_text(labels), labels))
    return rows


def _quantile(combos: Sequence[dict], name: str, q: float) -> str:
    counts: Counter = Counter()
    for c in combos:
        counts.update(c.get("values", {}).get(name, {}))
    if not counts:
        return ""
    values = sorted(counts, key=float)
    total, acc = sum(counts.values()), 0
    for v in values:
        acc += counts[v]
        if acc >= q * total:
            return v
    return values[-1]


def _label_text(labels: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in labels.items() if v != "") or "unconditional"


def label_tensors(spec: LabelSpec, items: Sequence[Mapping[str, Any]]):
    """Per condition: class indices (-1 = null) or standardised floats (NaN = null)."""
    import torch

    out = {}
    for t in spec.conditions:
        vals = [it["labels"].get(t.name, "") for it in items]
        if t.kind == "classification":
            out[t.name] = torch.tensor([t.classes.index(v) if v != "" else -1 for v in vals], dtype=torch.long)
        else:
            out[t.name] = torch.tensor([(float(v) - t.mean) / t.std if v != "" else math.nan for v in vals],
                                       dtype=torch.float32)
    return out
