"""Honest splits: no subject and no image in two of train, val and test, and no row twice in one.

A test split that shares subjects or images with the training split measures memory, not
generalisation, and tripled training rows silently reweight a run.  :func:`check_splits` finds
both before anything trains or is judged, and refuses unless the user asked for overlap
(``[data] allow_overlap``); what it found goes into ``metrics.json``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sd_core.errors import SdError


def _file(row: Mapping[str, str]) -> str:
    return os.path.normpath(os.path.join(row.get("_root", ""), row["file_name"]))


def _subject(row: Mapping[str, str]) -> tuple[str, str] | None:
    subject = row.get("subject", "")
    return (row.get("dataset", ""), subject) if subject else None


def _listed(items: Sequence, n: int = 5) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def split_overlap(splits: Mapping[str, Sequence[Mapping[str, str]]]) -> dict[str, Any]:
    """What the splits share: subjects (data set, subject) and image files per pair of splits,
    and files listed more than once within a split."""
    names = [s for s in splits if splits[s]]
    subjects = {s: {k for r in splits[s] if (k := _subject(r))} for s in names}
    files = {s: Counter(_file(r) for r in splits[s]) for s in names}
    shown = {_file(r): r["file_name"] for s in names for r in splits[s]}  # the metadata's own names
    shared: dict[str, dict[str, list]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            subj = sorted(subjects[a] & subjects[b])
            both = sorted(set(files[a]) & set(files[b]))
            if subj or both:
                shared[f"{a}/{b}"] = {"subjects": [f"{d}/{s}" if d else s for d, s in subj],
                                      "files": [shown[f] for f in both]}
    duplicated = {s: sorted(shown[f] for f, n in files[s].items() if n > 1) for s in names}
    return {"shared": shared, "duplicated": {s: f for s, f in duplicated.items() if f}}


def check_splits(splits: Mapping[str, Sequence[Mapping[str, str]]], allow: bool, where: str,
                 option: str = "[data] allow_overlap = true") -> dict[str, Any]:
    """Refuse overlapping or duplicated splits (unless ``allow``); returns the record for
    ``metrics.json``: ``{"overlap_allowed", "shared", "duplicated", "clean"}``."""
    found = split_overlap(splits)
    clean = not found["shared"] and not found["duplicated"]
    if not clean and not allow:
        problems = []
        for pair, what in found["shared"].items():
            if what["subjects"]:
                problems.append(f"{pair} share subjects {_listed(what['subjects'], 3)}")
            if what["files"]:
                problems.append(f"{pair} share {len(what['files'])} images ({_listed(what['files'], 1)})")
        for split, dup in found["duplicated"].items():
            problems.append(f"{split} lists {len(dup)} images more than once ({_listed(dup, 1)})")
        raise SdError(f"{where}: {'; '.join(problems)}.\nScores would be measured on what the model saw; "
                      f"set {option} if that is intended")
    return {"clean": clean, "overlap_allowed": bool(allow),
            "shared": {p: {k: len(v) for k, v in w.items()} for p, w in found["shared"].items()},
            "duplicated": {s: len(f) for s, f in found["duplicated"].items()}}
