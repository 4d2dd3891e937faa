"""The processed layout (DESIGN, "Processed data layout") and the run's state files.

```
<out>/train/<subject>/<recording>-<index>.png      (likewise val/ and test/)
<out>/train-metadata.csv  val-metadata.csv  test-metadata.csv  metadata.csv
<out>/preprocess.json                                 parameters, versions, per-subject status
<out>/.sd/params.json                                 parameters of the run in progress (resume check)
<out>/.sd/subjects/<subject>.json                     one finished subject: status and its rows
```
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sd_core.errors import SdError
from sd_core.io import atomic_write_text
from sd_core.splits import SPLIT_ORDER

#: Columns every metadata row has, in this order; the data set's own columns follow, then caption.
CORE_COLUMNS = ("file_name", "split", "dataset", "subject", "gender", "health", "age",
                "recording", "window", "start")
LAST_COLUMNS = ("caption",)
STATE_DIR = ".sd"


def state_dir(out: Path) -> Path:
    return out / STATE_DIR


def params_path(out: Path) -> Path:
    return state_dir(out) / "params.json"


def subject_state_path(out: Path, subject: str) -> Path:
    return state_dir(out) / "subjects" / f"{subject}.json"


def image_rel_path(split: str, subject: str, recording: str, index: int) -> str:
    return f"{split}/{subject}/{recording}-{index}.png"


def dumps_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, dumps_json(data))


def metadata_columns(dataset_columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    cols = [*CORE_COLUMNS, *[c for c in dataset_columns if c not in CORE_COLUMNS]]
    extra = sorted({k for r in rows for k in r} - set(cols) - set(LAST_COLUMNS))
    return [*cols, *extra, *LAST_COLUMNS]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v != v:  # NaN
        return ""
    return str(v)


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def remove_stale_temporaries(folder: Path) -> None:
    """Delete half-written temporary files (``.<name>.<random>.tmp``) left by a killed run."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def check_output_safe(out: Path, raw_root: Path) -> None:
    """Refuse an output folder that is, or contains, the raw data."""
    if _inside(raw_root, out):
        raise SdError(
            f"output folder {out} contains the raw data {raw_root}; "
            "choose an output folder outside the raw data"
        )


OWN_ENTRIES = (*SPLIT_ORDER, *(f"{s}-metadata.csv" for s in SPLIT_ORDER), "metadata.csv",
               "preprocess.json", STATE_DIR)


def clear_output(out: Path, raw_root: Path) -> list[Path]:
    """For ``--overwrite``: delete what preprocessing wrote in ``out``, and nothing else.

    Only the entries of the processed layout are removed (split folders, metadata files,
    ``preprocess.json``, the state folder); anything else a user keeps there stays.
    """
    check_output_safe(out, raw_root)
    removed = []
    for name in OWN_ENTRIES:
        p = out / name
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
        else:
            continue
        removed.append(p)
    return removed
