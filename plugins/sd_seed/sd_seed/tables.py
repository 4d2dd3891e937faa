"""SEED-V's tables: the participants table (XLSX as shipped, or CSV/TSV) and the trial table
(film-clip emotions and start/stop seconds per session, DESIGN's table unless a file replaces it).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sd_core.errors import DatasetError

#: SEED-V emotion ids 0…4
EMOTIONS = ("disgust", "fear", "sad", "neutral", "happy")

#: Names the participants table goes by (compared case-insensitively), in order of preference.
PARTICIPANT_TABLES = ("Participants_info.xlsx", "Participants_info.csv", "participants.xlsx",
                      "participants.csv", "participants.tsv", "Participants_info.tsv")
SUBJECT_COLUMNS = ("subject", "subjects", "subject_id", "subject id", "participant", "participant_id",
                   "id", "sub", "no", "no.")
SEX_COLUMNS = ("sex", "gender")
AGE_COLUMNS = ("age", "age (years)", "age_years")
SEXES = {"m": "M", "male": "M", "man": "M", "男": "M", "f": "F", "female": "F", "woman": "F", "w": "F", "女": "F"}
MISSING = {"", "n/a", "na", "nan", "none", "-", "?"}

#: DESIGN's SEED-V trial table: session → (emotion ids, start seconds, end seconds), trials 1…15.
SEED_V_TRIALS = {
    1: ((4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
        (30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932, 3204),
        (102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172, 3359)),
    2: ((2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
        (30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490, 2741),
        (267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709, 2817)),
    3: ((2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
        (30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726, 2888),
        (321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857, 3066)),
}
TRIAL_COLUMNS = ("session", "trial", "emotion", "start", "stop")


@dataclass(frozen=True)
class Trial:
    session: int
    trial: int
    emotion: str  # name, one of EMOTIONS
    start: float  # seconds from the start of the session's file
    stop: float


def builtin_trials() -> list[Trial]:
    return [Trial(s, i + 1, EMOTIONS[e], float(a), float(b))
            for s, (emos, starts, stops) in SEED_V_TRIALS.items()
            for i, (e, a, b) in enumerate(zip(emos, starts, stops))]


def _key(name: Any) -> str:
    return " ".join(str(name if name is not None else "").replace("_", " ").split()).lower()


def _keys(names: Sequence[str]) -> set[str]:
    return {_key(n) for n in names}


def read_rows(path: Path) -> list[list[str]]:
    """All non-empty rows of a CSV/TSV or of the first sheet of an XLSX file, as text."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - a dependency of sd-seed
            raise DatasetError(f"{path.name}: reading XLSX needs openpyxl (pip install openpyxl), "
                               "or save the table as CSV") from None
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise DatasetError(f"{path.name}: not a readable XLSX file ({type(exc).__name__}: {exc})") from None
        try:
            sheet = book.worksheets[0]
            rows = [["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                     for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    else:
        from sd_core.runs.files import read_text

        text = read_text(path)
        first = text.splitlines()[0] if text.strip() else ""
        delim = "\t" if "\t" in first else (";" if ";" in first and "," not in first else ",")
        rows = list(csv.reader(text.splitlines(), delimiter=delim))
    return [[c.strip() for c in r] for r in rows if any(str(c).strip() for c in r)]


def _header(rows: list[list[str]], path: Path, need: Sequence[Sequence[str]], what: str) -> tuple[int, list[str]]:
    """The first of the top rows that names every column group in ``need`` (title rows above it
    are skipped, as spreadsheets often have them)."""
    for i, row in enumerate(rows[:10]):
        keys = [_key(c) for c in row]
        if all(any(k in _keys(group) for k in keys) for group in need):
            return i, keys
    raise DatasetError(f"{path.name}: no header row with {what} columns (first row: "
                       f"{', '.join(rows[0]) if rows else 'none'})")


def _col(keys: list[str], names: Sequence[str]) -> int | None:
    wanted = _keys(names)
    return next((i for i, k in enumerate(keys) if k in wanted), None)


def subject_number(value: str) -> str | None:
    """``"1"``, ``"1.0"``, ``"sub01"``, ``"S1"``, ``"subject 1"`` → ``"1"`` (SEED-V files are
    named ``<subject>_<session>_<date>.cnt`` with the bare number)."""
    m = re.search(r"(\d+)(?:\.0+)?\s*$", value.strip())
    return str(int(m.group(1))) if m else None


def find_participants_table(folders: Sequence[Path]) -> Path | None:
    for name in PARTICIPANT_TABLES:
        for d in folders:
            if not d.is_dir():
                continue
            for p in d.iterdir():
                if p.name.lower() == name.lower() and p.is_file():
                    return p
    return None


def read_participants(path: Path) -> dict[str, dict[str, Any]]:
    """The participants table → {subject number: {gender, age}}."""
    rows = read_rows(path)
    if not rows:
        raise DatasetError(f"{path.name} is empty; it should list Subject, Sex and Age per subject")
    h, keys = _header(rows, path, (SUBJECT_COLUMNS, SEX_COLUMNS), "Subject and Sex")
    sub_c, sex_c, age_c = _col(keys, SUBJECT_COLUMNS), _col(keys, SEX_COLUMNS), _col(keys, AGE_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows[h + 1:], start=h + 2):
        row = row + [""] * (len(keys) - len(row))
        raw_id = row[sub_c]
        if not raw_id:
            continue
        where = f"{path.name} row {n}"
        sid = subject_number(raw_id)
        if sid is None:
            raise DatasetError(f"{where}: subject {raw_id!r} has no subject number")
        sex = row[sex_c]
        gender = None
        if sex.lower() not in MISSING:
            gender = SEXES.get(sex.lower())
            if gender is None:
                raise DatasetError(f"{where}: sex {sex!r} is neither F nor M")
        age = None
        if age_c is not None and row[age_c].lower() not in MISSING:
            try:
                age = int(float(row[age_c]))
            except ValueError:
                raise DatasetError(f"{where}: age {row[age_c]!r} is not a number") from None
        if sid in out:
            raise DatasetError(f"{where}: subject {sid} is listed twice")
        out[sid] = {"gender": gender, "age": age}
    return out


def read_trials(path: Path) -> list[Trial]:
    """A trial table file (CSV: ``session,trial,emotion,start,stop``; emotion as id 0–4 or name)."""
    rows = read_rows(path)
    if not rows:
        raise DatasetError(f"{path.name} is empty; it should list session,trial,emotion,start,stop")
    keys = [_key(c) for c in rows[0]]
    missing = [c for c in TRIAL_COLUMNS if c not in keys]
    if missing:
        raise DatasetError(f"{path.name}: no {', '.join(missing)} column(s) (has: {', '.join(rows[0])}); "
                           f"a trial table has columns {','.join(TRIAL_COLUMNS)}")
    idx = {c: keys.index(c) for c in TRIAL_COLUMNS}
    out: list[Trial] = []
    seen = set()
    for n, row in enumerate(rows[1:], start=2):
        where = f"{path.name} line {n}"
        try:
            session, trial = int(row[idx["session"]]), int(row[idx["trial"]])
            start, stop = float(row[idx["start"]]), float(row[idx["stop"]])
        except (ValueError, IndexError):
            raise DatasetError(f"{where}: session and trial must be whole numbers, start and stop seconds") from None
        emo = row[idx["emotion"]].strip().lower()
        if emo.isdigit() and int(emo) < len(EMOTIONS):
            emo = EMOTIONS[int(emo)]
        if emo not in EMOTIONS:
            raise DatasetError(f"{where}: emotion {row[idx['emotion']]!r} is not one of 0–4 or "
                               f"{', '.join(EMOTIONS)}")
        if not 0 <= start < stop:
            raise DatasetError(f"{where}: start {start:g} s must be ≥ 0 and before stop {stop:g} s")
        if (session, trial) in seen:
            raise DatasetError(f"{where}: session {session} trial {trial} is listed twice")
        seen.add((session, trial))
        out.append(Trial(session, trial, emo, start, stop))
    return out


def write_trials(path: Path, trials: Sequence[Trial]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRIAL_COLUMNS)
        for t in trials:
            w.writerow([t.session, t.trial, EMOTIONS.index(t.emotion), f"{t.start:g}", f"{t.stop:g}"])
