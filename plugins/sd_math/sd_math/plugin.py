"""Hooks of sd-math: the EEGMAT data set and its tasks.

PhysioNet "EEG During Mental Arithmetic Tasks" (EEGMAT) 1.0.0, as downloaded::

    <root>/subject-info.csv           Subject,Age,Gender,Recording year,Number of subtractions,Count quality
    <root>/Subject00_1.edf            rest (180 s), 500 Hz, "EEG Fp1" … "EEG Pz", "EEG A2-A1", "ECG ECG"
    <root>/Subject00_2.edf            mental arithmetic (60 s)
    ...

The original project's layout, with the EDF files (and possibly the table) in ``<root>/raw_eeg/``,
is accepted too. Every window carries ``doing_math`` (0 rest, 1 arithmetic) and the subject's
``count_quality`` (0 bad, 1 good); gender and age come from the table, health is ``H``.

Options (``[datasets.math]`` in sd.toml):

``states`` (default ``"both"``)
    Which recordings to process: ``"both"``, ``"rest"`` (``_1.edf`` only, what the original project
    did unless told otherwise) or ``"arithmetic"`` (``_2.edf`` only).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path
from typing import Any, Mapping

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import ConfigError, DatasetError
from sd_core.specs import CLASSIFICATION, REGRESSION, OptionSpec, TaskSpec

NAME = "math"
TABLE = "subject-info.csv"
SUBFOLDER = "raw_eeg"
STATES = ("both", "rest", "arithmetic")
#: file suffix → (state, doing_math)
FILES = {"1": ("rest", 0), "2": ("arithmetic", 1)}
_EDF = re.compile(r"^(Subject\d+)_([12])\.edf$", re.IGNORECASE)

log = logging.getLogger(__name__)


def _key(name: str) -> str:
    """Column names compared case-insensitively, whitespace collapsed: ``' Count  quality'``."""
    return " ".join(str(name).split()).lower()


def _gender(value: str, where: str) -> str | None:
    v = value.strip().upper()
    if not v:
        return None
    if v in ("F", "FEMALE", "W"):
        return "F"
    if v in ("M", "MALE"):
        return "M"
    raise DatasetError(f"{where}: gender {value!r} is neither F nor M")


def _number(value: str, where: str, what: str) -> int | None:
    v = value.strip()
    if not v:
        return None
    try:
        return int(float(v))
    except ValueError:
        raise DatasetError(f"{where}: {what} {value!r} is not a number") from None


def read_subject_info(path: Path) -> dict[str, dict[str, Any]]:
    """``subject-info.csv`` → {subject id: {gender, age, count_quality}}.

    Column names are matched case-insensitively with whitespace ignored; Subject, Age and Gender
    are required, Count quality is optional (empty when absent).
    """
    from sd_core.runs.files import read_text

    rows = list(csv.reader(io.StringIO(read_text(path), newline="")))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DatasetError(f"{path} is empty; it should list Subject,Age,Gender,... per subject")
    header = [_key(c) for c in rows[0]]
    need = {"subject": None, "age": None, "gender": None}
    for k in need:
        if k not in header:
            raise DatasetError(f"{path}: no {k.capitalize()!r} column (has: {', '.join(rows[0])})")
        need[k] = header.index(k)
    quality = header.index("count quality") if "count quality" in header else None
    out: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows[1:], start=2):
        where = f"{path.name} line {n}"
        if len(row) < len(header) or any(c.strip() for c in row[len(header):]):
            raise DatasetError(f"{where}: {len(row)} fields where the header has {len(header)} "
                               f"({', '.join(rows[0])}); a shifted row would give a subject another's labels")
        sid = row[need["subject"]].strip()
        if not sid:
            continue
        twice = next((s for s in out if s.lower() == sid.lower()), None)
        if twice is not None:
            raise DatasetError(f"{where}: subject {sid} is listed twice (also as {twice} on an earlier line)"
                               if twice != sid else f"{where}: subject {sid} is listed twice")
        out[sid] = {
            "gender": _gender(row[need["gender"]], where),
            "age": _number(row[need["age"]], where, "age"),
            "count_quality": _number(row[quality], where, "count quality") if quality is not None else None,
        }
    return out


class MathDataset(DatasetPlugin):
    name = NAME
    title = "PhysioNet EEGMAT: EEG during mental arithmetic (36 subjects, EDF, 500 Hz)"
    #: The original project's: every channel of the file except one named EKG, in file order
    #: (21 in EEGMAT: the 19 EEG channels, A2-A1 and ECG).
    channels = ("*", "!EKG")
    hop_multiple = 4
    columns = ("doing_math", "count_quality")
    main_task = "math_activity"
    #: The data's licence, a Hugging Face licence id (sd meta build's dataset cards):
    #: PhysioNet EEGMAT: Open Data Commons Attribution 1.0.
    license = "odc-by"
    options = {
        "states": OptionSpec("both", "recordings to process: \"both\", \"rest\" (SubjectNN_1.edf) or "
                                     "\"arithmetic\" (SubjectNN_2.edf)", choices=STATES),
    }

    # -- discovery --------------------------------------------------------------------------

    def raw_found(self, root: Path) -> bool:
        return any((d / TABLE).is_file() or any(d.glob("Subject*_[12].edf"))
                   for d in (root, root / SUBFOLDER) if d.is_dir())

    @staticmethod
    def _folders(root: Path) -> list[Path]:
        return [d for d in (root, root / SUBFOLDER) if d.is_dir()]

    def find_subjects(self, root: Path, options: Mapping[str, Any]) -> list[Subject]:
        states = options.get("states", "both")
        if states not in STATES:
            raise ConfigError(f"[datasets.{NAME}] states = {states!r} is not allowed; allowed: "
                              + ", ".join(STATES))
        folders = self._folders(root)
        table = next((d / TABLE for d in folders if (d / TABLE).is_file()), None)
        if table is None:
            raise DatasetError(
                f"{TABLE} not found in {root}"
                + (f" or {root / SUBFOLDER}" if (root / SUBFOLDER).is_dir() else "")
                + "; EEGMAT ships it beside the EDF files (it gives each subject's age and gender)"
            )
        info = read_subject_info(table)

        files: dict[tuple[str, str], Path] = {}
        for d in folders:
            for p in sorted(d.iterdir()):
                m = _EDF.match(p.name)
                if m:
                    files.setdefault((m.group(1).lower(), m.group(2)), p)
        # the folder holding the EDF files (for the paths of files that are missing)
        edf_dir = next((d for d in reversed(folders) if any(_EDF.match(p.name) for p in d.iterdir())), root)

        unknown = sorted({sid for sid, _ in files} - {s.lower() for s in info})
        if unknown:
            log.warning("%s: EDF files of %s have no row in %s and are left out",
                        root, ", ".join(unknown), table.name)
        wanted = [k for k, (state, _) in FILES.items() if states in ("both", state)]
        subjects = []
        for sid, labels in info.items():
            recs = []
            for k in wanted:
                path = files.get((sid.lower(), k), edf_dir / f"{sid}_{k}.edf")
                recs.append(Recording(path.stem, path, {"doing_math": FILES[k][1]}))
            subjects.append(Subject(sid, {"gender": labels["gender"], "health": "H", "age": labels["age"],
                                          "count_quality": labels["count_quality"]}, recs))
        return subjects

    # -- reading ----------------------------------------------------------------------------

    def read_raw(self, recording: Recording, options: Mapping[str, Any]):
        import mne

        from sd_core.signals.edf import check_edf

        check_edf(recording.path)  # missing, not EDF, or truncated: one clear line
        return mne.io.read_raw_edf(recording.path, preload=False, verbose="error")

    def caption(self, row: Mapping[str, Any]) -> str:
        from sd_core.plugins.captions import describe_subject

        math = row.get("doing_math")
        extra = {"0": "at rest", "1": "during mental arithmetic"}.get(str(math), "")
        return describe_subject(row, extra)

    # -- demo -------------------------------------------------------------------------------

    def write_demo(self, root: Path, seed: int = 0, **kw: Any) -> None:
        from sd_math.demo import write_eegmat

        write_eegmat(root, seed, **kw)

    def demo_size(self, size: str, scale: float = 1.0) -> tuple[dict[str, Any], int]:
        """Full size: EEGMAT's 36 subjects with 180 s of rest and 60 s of arithmetic each (times
        ``scale`` in subjects); 21 signals of 2-byte EDF samples at 500 Hz."""
        if size != "full":
            return super().demo_size(size, scale)
        n = max(2, round(36 * scale))
        return {"n_subjects": n, "rest_seconds": 180.0, "math_seconds": 60.0}, n * 240 * 500 * 21 * 2


@hookimpl
def sd_datasets():
    return [MathDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("math_activity", NAME, CLASSIFICATION, ("0", "1"), ("doing_math",),
                 "0 rest, 1 mental arithmetic"),
        TaskSpec("math_condition", NAME, CLASSIFICATION, ("0_F", "0_M", "1_F", "1_M"),
                 ("doing_math", "gender"), "activity × gender"),
        TaskSpec("count_quality", NAME, CLASSIFICATION, ("0", "1"),
                 description="0 bad, 1 good counting during the arithmetic task"),
    ]
