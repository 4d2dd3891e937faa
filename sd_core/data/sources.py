"""Processed data folders (DESIGN, "Processed data layout") and their metadata rows.

A source is one folder in the processed layout: the output of ``sd preprocess`` for a data set,
or a folder written by ``sd generate`` or ``sd meta build`` (a meta set holds several data sets:
a source naming one reads that one's rows). Rows keep every metadata column as text and gain
``_root`` (the folder), so that ``file_name`` resolves against it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from sd_core.errors import DatasetError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Source:
    """A processed folder; ``dataset`` is the data set it is expected to hold ("" = any)."""

    root: Path
    dataset: str = ""

    def metadata_path(self, split: str | None = None) -> Path:
        return self.root / (f"{split}-metadata.csv" if split else "metadata.csv")


def _hint(source: Source) -> str:
    if source.dataset:
        return (f"run `sd preprocess --dataset {source.dataset}` (or set output in "
                f"[datasets.{source.dataset}] of sd.toml, or [data] paths of the experiment file)")
    return "point to a folder written by `sd preprocess` or `sd generate`"


def read_metadata(source: Source, split: str | None = None) -> list[dict[str, str]]:
    """The rows of one split (or all splits) of a processed folder, each with ``_root``."""
    if not source.root.is_dir():
        what = f"processed data of {source.dataset!r}" if source.dataset else "processed data"
        raise DatasetError(f"no {what} in {source.root}: {_hint(source)}")
    path = source.metadata_path(split)
    if not path.is_file():
        whole = source.metadata_path()
        if split and whole.is_file():
            rows = [r for r in read_metadata(source) if r.get("split") == split]
            return rows
        raise DatasetError(f"{path} is missing: {_hint(source)}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None
    if rows and "file_name" not in rows[0]:
        raise DatasetError(f"{path}: no file_name column; is this a processed metadata file?")
    root = str(source.root)
    for line, r in enumerate(rows, start=2):
        check_file_name(r["file_name"], f"{path}, line {line}")
        r["_root"] = root
        if source.dataset and not r.get("dataset"):
            r["dataset"] = source.dataset
    if source.dataset and (source.root / "meta.json").is_file():
        # a meta set (sd meta build) holds several data sets: this source reads its own rows
        return [r for r in rows if r["dataset"] == source.dataset]
    if source.dataset:
        other = sorted({r["dataset"] for r in rows} - {source.dataset})
        if other:
            raise DatasetError(
                f"{path}: expected rows of data set {source.dataset!r}, found {', '.join(other)}"
            )
    return rows


def check_file_name(name: str | None, where: str) -> str:
    """A ``file_name`` as the layout writes it: a relative POSIX path of plain parts, so that it
    names a file inside its set's folder.  Absolute paths, drives, ``..``, ``.``, empty parts and
    backslashes are refused with ``where`` (file and line) named."""
    name = name or ""
    parts = name.split("/")
    bad = (not name or "\\" in name or "\0" in name or name.startswith("/") or ":" in parts[0]
           or any(p in ("", ".", "..") for p in parts))
    if bad:
        raise DatasetError(f"{where}: file_name {name!r} is not a plain relative path inside the data "
                           "set's folder (no absolute path, drive, '..' or backslash)")
    return name


def contained(root: Path | str, name: str) -> Path:
    """``root / name`` after :func:`check_file_name`, refused when a symlink takes it outside
    ``root``."""
    path = Path(root) / check_file_name(name, str(root))
    real, top = os.path.realpath(path), os.path.realpath(root)
    if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
        raise DatasetError(f"{path}: leads outside its data set's folder {root} (through a symlink to {real})")
    return path


def image_path(row: dict[str, str]) -> Path:
    """The image of a metadata row (see :func:`read_metadata`), inside its set's folder."""
    return contained(row["_root"], row["file_name"])
