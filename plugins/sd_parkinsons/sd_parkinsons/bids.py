"""The BIDS side of ds004584, without MNE: ``participants.tsv``, the recordings of each subject and
their sidecars (``*_eeg.json``, ``*_channels.tsv``).

Everything here is cheap (text files and directory listings) so that discovery stays fast.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sd_core.errors import DatasetError
from sd_core.runs.files import read_text

PARTICIPANTS = "participants.tsv"

#: Accepted column names (compared case-insensitively, spaces and dashes read as underscores).
ID_COLUMNS = ("participant_id", "participant", "subject_id", "subject")
GROUP_COLUMNS = ("group", "diagnosis", "health")
GENDER_COLUMNS = ("gender", "sex")
AGE_COLUMNS = ("age", "age_years")

#: Values of the group column (lower case) → health code.
GROUPS = {
    "pd": "PD", "parkinson": "PD", "parkinsons": "PD", "parkinson's": "PD", "parkinson's disease": "PD",
    "patient": "PD",
    "control": "H", "controls": "H", "ctl": "H", "ctrl": "H", "hc": "H", "healthy": "H", "h": "H",
    "healthy control": "H", "con": "H",
}
GENDERS = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F", "w": "F"}
MISSING = {"", "n/a", "na", "nan", "none", "unknown", "?"}

_SUBJECT_DIR = re.compile(r"^sub-[A-Za-z0-9]+$")
_EEG_SET = re.compile(r"^(sub-[A-Za-z0-9]+)((?:_[A-Za-z0-9]+-[A-Za-z0-9]+)*)_eeg\.set$")


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [_key(h) for h in header]
    for n in names:
        if n in keys:
            return keys.index(n)
    return None


def subject_id(value: str) -> str:
    """``"sub-001"`` stays, ``"001"`` becomes ``"sub-001"`` (BIDS participant ids carry the prefix)."""
    v = value.strip()
    return v if v.lower().startswith("sub-") and len(v) > 4 else f"sub-{v}"


def read_participants(path: Path) -> dict[str, dict[str, Any]]:
    """``participants.tsv`` → {``sub-XXX``: {health, gender, age}}.

    The id, group, gender (or sex) and age columns are found case-insensitively
    (``participant_id``/``GROUP``/``GENDER``/``AGE`` in ds004584, ``group``/``sex``/``Age``
    elsewhere). Group and id are required; gender and age may be missing (then empty).
    ``n/a`` cells are empty values, as BIDS writes them.
    """
    rows = [r for r in csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t")
            if any(c.strip() for c in r)]
    if not rows:
        raise DatasetError(f"{path} is empty; it should list participant_id, GROUP, AGE, GENDER per subject")
    header = rows[0]
    where = path.name
    cols = {}
    for what, names, required in (("id", ID_COLUMNS, True), ("group", GROUP_COLUMNS, True),
                                  ("gender", GENDER_COLUMNS, False), ("age", AGE_COLUMNS, False)):
        cols[what] = _find_column(header, names)
        if required and cols[what] is None:
            raise DatasetError(f"{where}: no {names[0]!r} column (has: {', '.join(header)}); "
                               f"ds004584's participants.tsv has participant_id, GROUP, AGE, GENDER")
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows[1:], start=2):
        row = row + [""] * (len(header) - len(row))
        raw_id = row[cols["id"]].strip()
        if not raw_id:
            continue
        line = f"{where} line {n}"
        group = row[cols["group"]].strip()
        health = GROUPS.get(group.lower())
        if health is None:
            raise DatasetError(f"{line}: group {group!r} is neither PD nor a control group "
                               f"(expected PD or Control)")
        gender = None
        if cols["gender"] is not None:
            g = row[cols["gender"]].strip()
            if g.lower() not in MISSING:
                gender = GENDERS.get(g.lower())
                if gender is None:
                    raise DatasetError(f"{line}: gender {g!r} is neither F nor M")
        age = None
        if cols["age"] is not None:
            a = row[cols["age"]].strip()
            if a.lower() not in MISSING:
                try:
                    age = int(float(a))
                except ValueError:
                    raise DatasetError(f"{line}: age {a!r} is not a number") from None
        sid = subject_id(raw_id)
        if sid in out:
            raise DatasetError(f"{line}: participant {sid} is listed twice")
        out[sid] = {"health": health, "gender": gender, "age": age}
    return out


@dataclass(frozen=True)
class EegFile:
    """One ``*_eeg.set`` of a subject with its BIDS entities and sidecars (None where absent)."""

    subject: str
    path: Path
    entities: dict[str, str]  # task, ses, run, ... as in the file name
    sidecar: Path | None
    channels_tsv: Path | None

    @property
    def id(self) -> str:
        """The file name without ``sub-XXX_`` and ``_eeg.set``: ``task-Rest`` (unique per subject)."""
        return self.path.name[len(self.subject) + 1:-len("_eeg.set")]


def parse_entities(text: str) -> dict[str, str]:
    """``"_ses-01_task-Rest_run-1"`` → {ses: 01, task: Rest, run: 1}."""
    return dict(part.split("-", 1) for part in text.strip("_").split("_") if "-" in part)


def _inherited(root: Path, eeg_dir: Path, stem: str, entities: dict[str, str], suffix: str) -> Path | None:
    """The sidecar of a recording: beside it first, then BIDS inheritance up to the root
    (``task-Rest_eeg.json`` at the top level applies to every Rest recording)."""
    own = eeg_dir / f"{stem}{suffix}"
    if own.is_file():
        return own
    task = entities.get("task")
    if task:
        for d in (eeg_dir.parent, eeg_dir.parent.parent, root):
            p = d / f"task-{task}{suffix}"
            if p.is_file():
                return p
    return None


def find_eeg_files(root: Path, task: str) -> dict[str, list[EegFile]]:
    """{``sub-XXX``: [its EEGLAB recordings of ``task`` ("*" = any)]}, sessions included."""
    out: dict[str, list[EegFile]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and _SUBJECT_DIR.match(p.name)):
        eeg_dirs = [sub / "eeg", *sorted(s / "eeg" for s in sub.glob("ses-*") if s.is_dir())]
        for eeg_dir in eeg_dirs:
            if not eeg_dir.is_dir():
                continue
            for p in sorted(eeg_dir.iterdir()):
                m = _EEG_SET.match(p.name)
                if not m or m.group(1) != sub.name:
                    continue
                ents = parse_entities(m.group(2))
                if task != "*" and ents.get("task", "").lower() != task.lower():
                    continue
                stem = p.name[:-len("_eeg.set")]
                out.setdefault(sub.name, []).append(EegFile(
                    sub.name, p, ents,
                    _inherited(root, eeg_dir, stem, ents, "_eeg.json"),
                    _inherited(root, eeg_dir, stem, ents, "_channels.tsv"),
                ))
    return out


def sidecar_sampling_frequency(path: Path) -> float | None:
    """``SamplingFrequency`` of a ``*_eeg.json`` sidecar (None if it has none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path.name}: not a readable JSON sidecar ({exc})") from None
    value = data.get("SamplingFrequency") if isinstance(data, dict) else None
    if value is None or value == "n/a":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path.name}: SamplingFrequency {value!r} is not a number") from None


def bad_channels(path: Path) -> list[str]:
    """Names of the channels whose ``status`` is ``bad`` in a ``*_channels.tsv``."""
    rows = [r for r in csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t")
            if any(c.strip() for c in r)]
    if not rows:
        return []
    name_col = _find_column(rows[0], ("name",))
    status_col = _find_column(rows[0], ("status",))
    if name_col is None:
        raise DatasetError(f"{path.name}: no 'name' column (has: {', '.join(rows[0])})")
    if status_col is None:
        return []
    return [r[name_col].strip() for r in rows[1:]
            if len(r) > max(name_col, status_col) and r[status_col].strip().lower() == "bad"]
