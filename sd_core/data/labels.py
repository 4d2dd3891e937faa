"""``labels.json`` of a run: what the model is conditioned on and how labels map to metadata.

Light (no torch): ``sd generate`` checks ``--condition`` values against it before loading the
model.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sd_core.data.tasks import ResolvedTask
from sd_core.errors import SdError
from sd_core.plugins.specs import CLASSIFICATION, REGRESSION

FORMAT = 1


@dataclass
class LabelSpec:
    """The conditions of a run.

    conditions:   resolved tasks in the conditioning order (classes, columns per data set,
                  mean/std of regression tasks).
    combos:       label combinations seen in training: data set, class value per classification
                  task ("" = none), row count, and the values of each regression task with counts.
    """

    datasets: list[str]
    conditions: list[ResolvedTask]
    image_size: int
    stored_size: int
    split: str = "train"
    text_encoder: str = ""
    combos: list[dict[str, Any]] = field(default_factory=list)

    @property
    def categorical(self) -> list[ResolvedTask]:
        return [t for t in self.conditions if t.kind == CLASSIFICATION]

    @property
    def continuous(self) -> list[ResolvedTask]:
        return [t for t in self.conditions if t.kind == REGRESSION]

    def task(self, name: str) -> ResolvedTask:
        for t in self.conditions:
            if t.name == name:
                return t
        raise SdError(f"unknown condition {name!r}; this model is conditioned on: "
                      + ", ".join(t.name for t in self.conditions))

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "datasets": self.datasets,
                "conditions": [t.as_dict() for t in self.conditions],
                "image_size": self.image_size, "stored_size": self.stored_size, "split": self.split,
                "text_encoder": self.text_encoder, "combos": self.combos}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelSpec:
        return cls(list(d["datasets"]), [ResolvedTask.from_dict(t) for t in d["conditions"]],
                   int(d["image_size"]), int(d.get("stored_size", d["image_size"])), d.get("split", "train"),
                   d.get("text_encoder", ""), list(d.get("combos", [])))

    def save(self, path: Path) -> None:
        from sd_core.preprocess.layout import write_json

        write_json(path, self.as_dict())

    @classmethod
    def load(cls, path: Path) -> LabelSpec:
        try:
            spec = cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SdError(f"{path}: cannot be read as a run's labels file ({exc})") from None
        for key in ("image_size", "stored_size"):
            if not 1 <= getattr(spec, key) <= 8192:
                raise SdError(f"{path}: {key} = {getattr(spec, key)} must be from 1 to 8192")
        return spec


def label_combos(rows: Sequence[Mapping[str, Any]], tasks: Sequence[ResolvedTask]) -> list[dict[str, Any]]:
    """The label combinations of the training rows (see :class:`LabelSpec`)."""
    cat = [t for t in tasks if t.kind == CLASSIFICATION]
    cont = [t for t in tasks if t.kind == REGRESSION]
    counts: Counter = Counter()
    values: dict[tuple, dict[str, Counter]] = {}
    for r in rows:
        key = (r.get("dataset", ""), *(t.raw_value(r) for t in cat))
        counts[key] += 1
        per = values.setdefault(key, {t.name: Counter() for t in cont})
        for t in cont:
            v = t.raw_value(r)
            if v != "":
                per[t.name][v] += 1
    out = []
    for key in sorted(counts):
        out.append({"dataset": key[0], "labels": {t.name: v for t, v in zip(cat, key[1:])},
                    "count": counts[key],
                    "values": {n: dict(sorted(c.items())) for n, c in values[key].items()}})
    return out
