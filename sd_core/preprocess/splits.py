"""Subject-level train/val/test splits.

No subject is in two splits. The assignment is a function of (seed, subjects, their strata,
fractions) only; every requested split gets at least one subject when there are enough; within
each stratum (for example Parkinson's × gender) the split proportions follow the fractions as
closely as whole subjects allow, and a stratum with at least one subject per split reaches
every split. A CSV file of ``subject,split`` pins the assignment instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Mapping, Sequence

from sd_core.errors import ConfigError

SPLIT_ORDER = ("train", "val", "test")


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Whole-subject counts per split: largest remainder, then at least one per split if n allows."""
    names = [s for s in SPLIT_ORDER if fractions.get(s, 0) > 0]
    total = sum(fractions[s] for s in names)
    exact = {s: n * fractions[s] / total for s in names}
    counts = {s: int(exact[s]) for s in names}
    for s in sorted(names, key=lambda s: (-(exact[s] - counts[s]), names.index(s)))[: n - sum(counts.values())]:
        counts[s] += 1
    if n >= len(names):
        for s in names:
            while counts[s] == 0:
                donor = max(names, key=lambda d: (counts[d], -names.index(d)))
                counts[donor] -= 1
                counts[s] += 1
    return counts


def _shuffle_key(seed: int, subject: str) -> str:
    return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()


def assign_splits(
    subjects: Sequence[str],
    fractions: Mapping[str, float],
    seed: int = 0,
    strata: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """subject → split. ``strata`` maps subject → stratum label (e.g. ``"PD_F"``)."""
    strata = strata or {}
    counts = split_counts(len(subjects), fractions)
    names = list(counts)
    remaining = dict(counts)
    groups: dict[str, list[str]] = {}
    for s in sorted(set(subjects)):
        groups.setdefault(strata.get(s, ""), []).append(s)
    out: dict[str, str] = {}
    # rarest strata first, so that they are spread before capacity runs out
    for label in sorted(groups, key=lambda g: (len(groups[g]), g)):
        members = sorted(groups[label], key=lambda s: _shuffle_key(seed, s))
        taken = {n: 0 for n in names}
        for i, subject in enumerate(members):
            open_splits = [n for n in names if remaining[n] > 0]
            if len(members) >= len(names):
                # a stratum large enough to appear in every split does (a test set without
                # any seizure subject, say, could not measure the seizure task)
                empty = [n for n in open_splits if taken[n] == 0]
                if len(members) - i <= len(empty):
                    open_splits = empty
            # the split furthest below its share of this stratum (ties: most capacity, then order)
            best = max(open_splits, key=lambda n: (
                counts[n] / max(len(subjects), 1) * (i + 1) - taken[n], remaining[n], -names.index(n)))
            out[subject] = best
            taken[best] += 1
            remaining[best] -= 1
    return out


def read_split_file(path: Path, subjects: Sequence[str]) -> dict[str, str]:
    """A pinned assignment from a CSV with columns ``subject,split`` (header required)."""
    from sd_core.runs.files import read_text

    text = read_text(path, ConfigError, "split file")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows or not {"subject", "split"} <= set(rows[0]):
        raise ConfigError(f"split file {path} needs a header with columns subject,split")
    pinned: dict[str, str] = {}
    for line, r in enumerate(rows, start=2):
        sid, split = (r.get("subject") or "").strip(), (r.get("split") or "").strip()
        if sid in pinned and pinned[sid] != split:
            raise ConfigError(f"split file {path} line {line}: subject {sid} is assigned twice "
                              f"({pinned[sid]} and {split})")
        pinned[sid] = split
    bad = sorted({v for v in pinned.values() if v not in SPLIT_ORDER})
    if bad:
        raise ConfigError(f"split file {path}: unknown split(s) {', '.join(bad)}; allowed: train, val, test")
    missing = [s for s in subjects if s not in pinned]
    if missing:
        raise ConfigError(
            f"split file {path} does not assign {len(missing)} subject(s): {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else "")
        )
    return {s: pinned[s] for s in subjects}
