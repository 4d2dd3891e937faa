"""What ``sd evaluate`` checks of its inputs before judging: distinct sets, and labels to judge by."""

from __future__ import annotations

import os
from pathlib import Path

from sd_core.data.overlap import check_splits
from sd_core.errors import SdError

FLOOR_SPLIT = "train"  #: the split REAL's floors are drawn from


def distinct_sets(real: Path, gen: Path, real_split: str, real_rows: list, train_rows: list,
                   gen_rows: list) -> None:
    """GEN is not REAL nor holds REAL's files, and REAL's floor split shares no subject or image
    with the judged split (sd_core.data.overlap); else the floors and every score compare a set
    with itself."""
    if real.resolve() == gen.resolve():
        raise SdError(f"GEN {gen} is REAL: judge generated images against real ones")
    real_files = {os.path.normpath(os.path.join(r["_root"], r["file_name"])) for r in real_rows + train_rows}
    same = sum(os.path.normpath(os.path.join(r["_root"], r["file_name"])) in real_files for r in gen_rows)
    if same:
        raise SdError(f"GEN {gen}: {same} of its {len(gen_rows)} images are REAL's own files")
    if real_split != FLOOR_SPLIT:
        check_splits({FLOOR_SPLIT: train_rows, real_split: real_rows}, False, f"REAL {real}",
                     option="a REAL whose splits are subject-disjoint")


def gen_labels(gen: Path, tasks: list, dataset: str, gen_rows: list) -> None:
    """GEN has the label columns it is judged on (else conditional accuracy is silently null)."""
    for t in tasks:
        columns = t.columns.get(dataset, ())
        if not any(r.get(c, "") != "" for r in gen_rows for c in columns):
            raise SdError(f"GEN {gen}: no row carries a {t.name!r} label (column {', '.join(columns) or t.name}); "
                          "its images cannot be judged on that task")
