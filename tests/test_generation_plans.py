"""Which labels `sd generate` asks for: per-data-set draws of regression conditions, and the data
set itself as a condition (issue 14, generation fixes)."""

from __future__ import annotations

from collections import Counter

import pytest

from sd_core.data.labels import LabelSpec, label_combos
from sd_core.data.tasks import resolve_tasks, standardised
from sd_core.diffusion.plans import plan
from sd_core.diffusion.rows import label_row
from sd_core.errors import ConfigError
from sd_core.plugins import get_registry

#: math subjects are 20–29 years old, Parkinson's subjects 60–75
AGES = {"math": [20, 23, 26, 29], "parkinsons": [60, 65, 70, 75]}


def rows():
    out = []
    for ds, ages in AGES.items():
        for i, age in enumerate(ages):
            for w in range(3):
                out.append({"dataset": ds, "subject": f"{ds}{i}", "gender": "FM"[i % 2], "health": "H",
                            "age": str(age), "file_name": f"train/{ds}{i}/r-{w}.png"})
    return out


def spec_for(conditions):
    reg = get_registry()
    rs = rows()
    tasks = [standardised(t, rs) for t in resolve_tasks(conditions, list(AGES), reg, rs)]
    return LabelSpec(list(AGES), tasks, 32, 32, "train", "", label_combos(rs, tasks))


def test_age_is_drawn_from_the_rows_data_set():
    spec = spec_for(["gender", "age"])
    for ds, ages in AGES.items():
        items = plan(spec, 40, balanced=True, seed=1, dataset=ds)
        assert {it["dataset"] for it in items} == {ds}
        assert {int(it["labels"]["age"]) for it in items} <= set(ages), ds


def test_the_data_set_is_a_condition():
    spec = spec_for(["dataset", "gender", "age"])
    assert spec.task("dataset").classes == ("math", "parkinsons")
    items = plan(spec, 30, balanced=True, seed=2)
    combos = Counter((it["dataset"], it["labels"]["gender"]) for it in items)
    assert combos == {("math", "F"): 30, ("math", "M"): 30, ("parkinsons", "F"): 30, ("parkinsons", "M"): 30}
    for it in items:
        assert it["labels"]["dataset"] == it["dataset"]
        assert int(it["labels"]["age"]) in AGES[it["dataset"]]
        assert label_row(spec, it)["dataset"] == it["dataset"]
    # drawn like the training rows: each row's age is its own data set's
    for it in plan(spec, 200, seed=3):
        assert int(it["labels"]["age"]) in AGES[it["dataset"]]
    items = plan(spec, 5, conditions=[{"dataset": "parkinsons"}], seed=4)
    assert {it["dataset"] for it in items} == {"parkinsons"}
    assert {int(it["labels"]["age"]) for it in items} <= set(AGES["parkinsons"])


def test_an_unknown_task_lists_dataset_among_the_allowed():
    with pytest.raises(ConfigError, match="dataset"):
        resolve_tasks(["mood"], list(AGES), get_registry(), rows())
