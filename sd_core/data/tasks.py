"""Task names of an experiment resolved against the data sets it reads.

One data set: any task its plugins define. Several data sets: only tasks every one of them
defines (same kind), or the canonical labels ``gender``, ``health`` and ``age``, which every
metadata row carries, or ``dataset`` (which data set a row comes from). A row whose value is empty has no target for that task (it is masked out
of the loss and the metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from sd_core.config.schema import did_you_mean
from sd_core.errors import ConfigError, DatasetError
from sd_core.plugins.specs import CANONICAL_LABELS, CLASSIFICATION, REGRESSION

MISSING_CLASS = -1
#: A task every experiment may name: the data set of the row (classes: the experiment's data
#: sets). A diffusion model conditioned on it generates rows of a chosen data set.
DATASET_TASK = "dataset"

#: kind of a canonical label when no plugin of the data sets defines it as a task
CANONICAL_KINDS = {"gender": CLASSIFICATION, "health": CLASSIFICATION, "age": REGRESSION}


@dataclass(frozen=True)
class ResolvedTask:
    """A task across the data sets of an experiment.

    classes:  class values in index order (classification); union over data sets.
    columns:  per data set, the metadata columns the target is read from.
    mean/std: standardisation of a regression target (from the training rows).
    """

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mean: float = 0.0
    std: float = 1.0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def raw_value(self, row: Mapping[str, Any]) -> str:
        cols = self.columns.get(row.get("dataset", ""), (self.name,))
        values = [str(row.get(c, "") or "") for c in cols]
        return "" if any(v == "" for v in values) else "_".join(values)

    def target(self, row: Mapping[str, Any]) -> float | int:
        """Class index (``MISSING_CLASS`` when empty) or a float (NaN when empty)."""
        value = self.raw_value(row)
        if self.kind == REGRESSION:
            if value == "":
                return math.nan
            try:
                return float(value)
            except ValueError:
                raise DatasetError(
                    f"task {self.name!r}: value {value!r} of {row.get('file_name')} is not a number"
                ) from None
        if value == "":
            return MISSING_CLASS
        try:
            return self.classes.index(value)
        except ValueError:
            raise DatasetError(
                f"task {self.name!r}: value {value!r} of {row.get('file_name')} is not one of its "
                f"classes ({', '.join(self.classes)})"
            ) from None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes),
                "columns": {k: list(v) for k, v in self.columns.items()},
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResolvedTask":
        return cls(d["name"], d["kind"], tuple(d.get("classes", ())),
                   {k: tuple(v) for k, v in d.get("columns", {}).items()},
                   float(d.get("mean", 0.0)), float(d.get("std", 1.0)))


def resolve_tasks(names: Sequence[str], datasets: Sequence[str], registry: Any,
                  rows: Iterable[Mapping[str, Any]] = (), where: str = "[data] tasks") -> list[ResolvedTask]:
    """Check ``names`` against the data sets and build the tasks.

    ``rows`` (all rows that will be read) supply the classes of a canonical label that no plugin
    of these data sets declares as a task, and are checked against the declared classes.
    """
    if not names:
        raise ConfigError(f"{where}: name at least one task")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: task(s) listed twice: {', '.join(dup)}")
    rows = list(rows)
    out = []
    for name in names:
        if name == DATASET_TASK:  # which data set a row comes from: every row says it
            out.append(ResolvedTask(name, CLASSIFICATION, tuple(sorted(datasets)),
                                    {ds: (DATASET_TASK,) for ds in datasets}))
            continue
        defined = {ds: {t.name: t for t in registry.tasks_of(ds)}.get(name) for ds in datasets}
        missing = [ds for ds, t in defined.items() if t is None]
        if missing and name not in CANONICAL_LABELS:
            if len(datasets) == 1:
                allowed = sorted(t.name for t in registry.tasks_of(datasets[0]))
                raise ConfigError(f"{where}: unknown task {name!r} of data set {datasets[0]!r}; "
                                  f"allowed: {', '.join(allowed)}" + did_you_mean(name, allowed))
            common = set.intersection(*({t.name for t in registry.tasks_of(ds)} for ds in datasets))
            allowed = sorted(common | set(CANONICAL_LABELS) | {DATASET_TASK})
            raise ConfigError(
                f"{where}: task {name!r} is not defined by data set(s) {', '.join(missing)}; across "
                f"data sets only tasks all of them define or the canonical labels are allowed: "
                f"{', '.join(allowed)}"
            )
        specs = [t for t in defined.values() if t is not None]
        kinds = {t.kind for t in specs} or {CANONICAL_KINDS[name]}
        if len(kinds) > 1:
            raise ConfigError(f"{where}: task {name!r} is a classification task in some data sets "
                              "and a regression task in others")
        kind = kinds.pop()
        columns = {ds: (tuple(t.columns) if t is not None else (name,)) for ds, t in defined.items()}
        classes: list[str] = []
        for t in specs:
            classes += [c for c in t.classes if c not in classes]
        task = ResolvedTask(name, kind, tuple(classes), columns)
        if kind == CLASSIFICATION:
            seen = sorted({task.raw_value(r) for r in rows} - {""})
            if not specs:
                task = ResolvedTask(name, kind, tuple(seen), columns)
            else:
                extra = [v for v in seen if v not in classes]
                if extra:
                    raise DatasetError(f"task {name!r}: the metadata has value(s) "
                                       f"{', '.join(extra)} outside its classes {', '.join(classes)}")
        out.append(task)
    return out


def standardised(task: ResolvedTask, train_rows: Sequence[Mapping[str, Any]]) -> ResolvedTask:
    """A regression task with mean and std of its training targets (others unchanged)."""
    if task.kind != REGRESSION:
        return task
    values = [v for v in (task.target(r) for r in train_rows) if not math.isnan(v)]
    if not values:
        raise DatasetError(f"task {task.name!r}: no training row has a value")
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return ResolvedTask(task.name, task.kind, task.classes, task.columns, mean, math.sqrt(var) or 1.0)


def check_trainable(tasks: Sequence[ResolvedTask], train_rows: Sequence[Mapping[str, Any]],
                    split: str = "train") -> None:
    """A classification task needs at least two classes among the training rows."""
    for t in tasks:
        if t.kind != CLASSIFICATION:
            continue
        present = sorted({t.raw_value(r) for r in train_rows} - {""})
        if len(present) < 2:
            found = present[0] if present else "no labelled row"
            raise DatasetError(
                f"task {t.name!r} has a single class in the {split} split ({found}); it cannot be "
                f"learned: choose other tasks or data sets, or change the split"
            )
