"""The processed layout (DESIGN, "Processed data layout") and the run's state files.

```
<out>/train/<subject>/<recording>-<index>.png      (likewise val/ and test/)
<out>/train/metadata.csv                            (likewise val/ and test/: file names relative to it)
<out>/train-metadata.csv  val-metadata.csv  test-metadata.csv  metadata.csv
<out>/preprocess.json                                 parameters, versions, per-subject status
<out>/.sd/params.json                                 parameters of the run in progress (resume check)
<out>/.sd/subjects/<subject>.json                     one finished subject: status, rows, files
<out>/.sd/subjects/<subject>.writing                  images being written (a subject in progress)
<out>/.sd/written.json                                the metadata files sd wrote, with their hashes
```

``sd`` deletes or replaces only files it can show it wrote (see :mod:`sd_core.runs.owned`): images
listed in a subject's state or intent log, and top-level files listed in ``written.json`` with
the hash they still have.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sd_core.errors import SdError
from sd_core.preprocess.splits import SPLIT_ORDER
from sd_core.runs.files import atomic_write_text
from sd_core.runs.owned import STATE_DIR, IntentLog, Manifest, remove_files

#: Columns every metadata row has, in this order; the data set's own columns follow, then caption.
CORE_COLUMNS = ("file_name", "split", "dataset", "subject", "gender", "health", "age",
                "recording", "window", "start")
LAST_COLUMNS = ("caption",)
METADATA_FILES = (*(f"{s}-metadata.csv" for s in SPLIT_ORDER), "metadata.csv", "preprocess.json")
#: One metadata file inside each split folder, file names relative to it: what Hugging Face
#: ``datasets``' imagefolder builder reads split by split (the files above stay for sd's readers).
SPLIT_METADATA_FILES = tuple(f"{s}/metadata.csv" for s in SPLIT_ORDER)


def state_dir(out: Path) -> Path:
    return out / STATE_DIR


def params_path(out: Path) -> Path:
    return state_dir(out) / "params.json"


def subject_state_path(out: Path, subject: str) -> Path:
    return state_dir(out) / "subjects" / f"{subject}.json"


def subject_log(out: Path, subject: str) -> IntentLog:
    return IntentLog(state_dir(out) / "subjects" / f"{subject}.writing")


def subject_files(state: Mapping[str, Any]) -> dict[str, str | None]:
    """The images a subject state says sd wrote (hash ``None`` in states of an older sd)."""
    if "files" in state:
        return dict(state["files"])
    return {r["file_name"]: None for r in state.get("rows", [])}


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


def split_csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], split: str,
                   all_rows: Iterable[Mapping[str, Any]] | None = None) -> str:
    """``<split>/metadata.csv``: the split's rows with file names relative to the split folder.

    Hugging Face ``datasets`` infers each split's column types from its own file and refuses
    splits that disagree; a whole number column with a gap somewhere (an unknown age, a column
    only some data sets have) would read as integers in one split and as floats in another. Such
    columns are written as floats (``62.0``) in every split; ``all_rows`` (every split's rows,
    default: ``rows``) decides which."""
    rows = list(rows)
    floats = _gapped_whole_numbers(columns, rows if all_rows is None else all_rows)
    prefix = f"{split}/"
    rel = []
    for r in rows:
        name = str(r["file_name"])
        if not name.startswith(prefix):
            raise SdError(f"{name} is not inside the {split} folder; cannot list it in {prefix}metadata.csv")
        row = {**r, "file_name": name[len(prefix):]}
        for c in floats:
            if _cell(row.get(c)) != "":
                row[c] = repr(float(_cell(row[c])))
        rel.append(row)
    return csv_text(columns, rel)


def _gapped_whole_numbers(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Columns of whole numbers (as pandas reads them) with an empty cell somewhere."""
    out = []
    rows = list(rows)
    for c in columns:
        if c == "file_name":
            continue
        cells = [_cell(r.get(c)) for r in rows]
        filled = [v for v in cells if v != ""]
        if not filled or len(filled) == len(cells):
            continue
        try:
            whole = all(float(v).is_integer() and re.fullmatch(r"[+-]?\d+", v.strip()) for v in filled)
        except ValueError:
            continue
        if whole:
            out.append(c)
    return out


#: The temporary files of sd_core.runs.files.atomic_open: ``.<name>.<random>.tmp``
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(folder: Path) -> None:
    """Delete half-written temporary files left by a killed run (call before workers start)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            if _TEMPORARY.match(tmp.name) and tmp.is_file():
                tmp.unlink(missing_ok=True)


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def check_output_safe(out: Path, raw_root: Path) -> None:
    """Refuse an output folder that is, or contains, the raw data, or that
    :func:`sd_core.runs.places.check_output_place` refuses (home, a run, another kind of set)."""
    from sd_core.runs.places import check_output_place

    check_output_place(out, "preprocess.json", fresh=False)
    if _inside(raw_root, out):
        raise SdError(
            f"output folder {out} contains the raw data {raw_root}; "
            "choose an output folder outside the raw data"
        )


def manifest_of(out: Path) -> Manifest:
    """The top-level files sd wrote in ``out``; a run of an older sd (a state folder but no
    manifest) is taken to have written the metadata files it names."""
    return Manifest(out, legacy=METADATA_FILES if params_path(out).is_file() else ())


def owned_subjects(out: Path) -> list[str]:
    """Subjects with a state file or an intent log under ``.sd/subjects``."""
    folder = state_dir(out) / "subjects"
    if not folder.is_dir():
        return []
    return sorted({p.name.rsplit(".", 1)[0] for p in folder.iterdir()
                   if p.suffix in (".json", ".writing") and not p.name.startswith(".")})


def clear_subjects(out: Path, subjects: Iterable[str]) -> int:
    """Delete the images sd wrote for ``subjects`` and their state; returns the files deleted.

    Every file is checked before any is deleted: one that changed since sd wrote it stops the
    clearing with an error naming it."""
    files: dict[str, str | None] = {}
    records = []
    for sid in subjects:
        path = subject_state_path(out, sid)
        if path.is_file():
            try:
                files.update(subject_files(read_json(path)))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise SdError(f"{path}: not a subject state written by sd") from None
            records.append(path)
        log = subject_log(out, sid)
        files.update({rel: files.get(rel) for rel in log.read()})
        records.append(log.path)
    removed = remove_files(out, files)
    for path in records:
        path.unlink(missing_ok=True)
    return len(removed)


def clear_output(out: Path, raw_root: Path) -> int:
    """For ``--overwrite``: delete what preprocessing wrote in ``out``, and nothing else.

    Images listed in the subjects' states and intent logs, the metadata files (the split
    folders' ``metadata.csv`` too) and ``preprocess.json`` listed in ``.sd/written.json``, and
    the run's own state files; folders left empty go too. A user's files
    (``test/test_mycode.py``, ``train/notes.txt``) stay, and a file sd wrote but the user changed
    stops the clearing with an error naming it.
    """
    check_output_safe(out, raw_root)
    manifest = manifest_of(out)
    owned = (*METADATA_FILES, *SPLIT_METADATA_FILES)
    for rel in owned:  # check before deleting anything
        if rel in manifest.files or rel in METADATA_FILES:
            manifest.check(rel)
    removed = clear_subjects(out, owned_subjects(out))
    removed += len(remove_files(out, {r: manifest.files.get(r) for r in owned if r in manifest.files}))
    for path in (params_path(out), manifest.path):
        path.unlink(missing_ok=True)
    for folder in (state_dir(out) / "subjects", state_dir(out)):
        try:
            folder.rmdir()
        except OSError:
            pass
    return removed
