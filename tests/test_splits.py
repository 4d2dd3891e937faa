"""Subject-level splits: deterministic, stratified, never empty when avoidable."""

from collections import Counter

import pytest

from sd_core.preprocess.splits import assign_splits, split_counts

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def test_counts_give_every_split_a_subject_when_possible():
    assert split_counts(3, FRACTIONS) == {"train": 1, "val": 1, "test": 1}
    assert split_counts(4, FRACTIONS) == {"train": 2, "val": 1, "test": 1}
    assert split_counts(10, FRACTIONS) == {"train": 7, "val": 2, "test": 1}
    assert split_counts(2, FRACTIONS) == {"train": 2, "val": 0, "test": 0}  # not enough subjects
    assert split_counts(5, {"train": 0.8, "test": 0.2}) == {"train": 4, "test": 1}


def test_deterministic_and_seed_dependent():
    subjects = [f"sub-{i:03d}" for i in range(40)]
    a = assign_splits(subjects, FRACTIONS, seed=3)
    assert a == assign_splits(list(reversed(subjects)), FRACTIONS, seed=3)  # order does not matter
    assert a != assign_splits(subjects, FRACTIONS, seed=4)
    assert Counter(a.values()) == {"train": 28, "val": 6, "test": 6}


def test_stratified_like_the_parkinsons_set():
    """ds004584: 100 PD and 49 controls; each split keeps the PD share close to 100/149."""
    subjects = [f"sub-{i:03d}" for i in range(149)]
    strata = {s: ("PD" if i < 100 else "H") + ("_F" if i % 3 == 0 else "_M") for i, s in enumerate(subjects)}
    a = assign_splits(subjects, FRACTIONS, seed=0, strata=strata)
    for split in ("train", "val", "test"):
        members = [s for s in subjects if a[s] == split]
        share = sum(strata[s].startswith("PD") for s in members) / len(members)
        assert share == pytest.approx(100 / 149, abs=0.05), (split, share)
        female = sum(strata[s].endswith("_F") for s in members) / len(members)
        assert female == pytest.approx(50 / 149, abs=0.06), (split, female)


def test_rare_stratum_is_spread():
    subjects = [f"s{i}" for i in range(12)]
    strata = {s: "rare" if i < 3 else "common" for i, s in enumerate(subjects)}
    a = assign_splits(subjects, FRACTIONS, seed=0, strata=strata)
    assert {a[s] for s in subjects[:3]} == {"train", "val", "test"}
