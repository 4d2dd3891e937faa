"""Hooks of sd-seed: the SEED-V data set and its tasks.

SEED-V (16 subjects × 3 sessions × 15 film clips, five emotions), as downloaded::

    <root>/Participants_info.xlsx           Subject, Sex, Age, ... (a CSV/TSV works too)
    <root>/EEG_raw/1_1_20180804.cnt         subject 1, session 1, recorded 2018-08-04: Neuroscan,
    <root>/EEG_raw/1_2_20180810.cnt         66 channels (62 EEG, FP1 … CB2, and M1 M2 HEO VEO),
    ...                                     1000 Hz, 32-bit samples

(``.cnt`` files directly in ``<root>`` work too, and the table may sit in ``EEG_raw/``.)

Every session file is cut into its 15 trials (one film clip each) with DESIGN's trial table
(:data:`sd_seed.tables.SEED_V_TRIALS`); each trial is one recording with ``start``/``stop``
seconds, so only that span of the file is read, and its windows carry ``emotion`` (name),
``session`` and ``trial``. Gender and age come from the participants table (column names matched
case-insensitively; sex as M/F, male/female); health is ``H``.

Reading uses :mod:`sd_seed.cnt` rather than ``mne.io.read_raw_cnt``: it sizes files whose header
MNE cannot (``7_1_20180411.cnt``), is independent of the numpy-2 overflow of older MNE readers,
and reads one trial with memory for that trial's picked channels only (see that module).

Options (``[datasets.seed]`` in sd.toml):

``trial_table`` (``"auto"``)
    ``"auto"``: ``<root>/trials.csv`` if there is one (the demo writes one with shortened trials),
    else DESIGN's SEED-V table; ``"builtin"``: always DESIGN's table; any other text: a CSV file
    (relative to the raw folder or absolute) with columns ``session,trial,emotion,start,stop``
    (emotion as id 0–4 or name, times in seconds from the start of the session's file).
``data_format`` (``"auto"``)
    Sample width of the ``.cnt`` files: ``"auto"`` decides per file from the header (and, where the
    header gives no usable size or both widths fit, from the samples all over the file: see
    :mod:`sd_seed.width`); a file they cannot decide is reported with a message that asks for
    this option. ``"int32"``/``"int16"`` force it.
``participants`` (``"auto"``)
    The participants table: ``"auto"`` finds ``Participants_info.xlsx`` (or ``.csv``,
    ``participants.csv``/``.tsv``/``.xlsx``) in the raw folder or ``EEG_raw/``; else a file name.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import ConfigError, DatasetError
from sd_core.specs import CLASSIFICATION, REGRESSION, OptionSpec, TaskSpec

NAME = "seed"
#: SEED-V emotion ids 0…4
EMOTIONS = ("disgust", "fear", "sad", "neutral", "happy")
GENDERS = ("F", "M")
SUBFOLDER = "EEG_raw"
TRIALS_FILE = "trials.csv"
DATA_FORMATS = ("auto", "int32", "int16")
#: a trial may end this many seconds after the end of its file (rounding of the table's seconds)
END_TOLERANCE = 1.0
_CNT = re.compile(r"^(\d+)_(\d+)_(\d+)\.cnt$", re.IGNORECASE)
#: caption phrases per emotion
WATCHING = {
    "disgust": "watching a film clip that evokes disgust",
    "fear": "watching a film clip that evokes fear",
    "sad": "watching a film clip that evokes sadness",
    "neutral": "watching a neutral film clip",
    "happy": "watching a film clip that evokes happiness",
}

log = logging.getLogger(__name__)


def _folders(root: Path) -> list[Path]:
    return [d for d in (root, root / SUBFOLDER) if d.is_dir()]


def _check_options(options: Mapping[str, Any]) -> None:
    fmt = options.get("data_format", "auto")
    if fmt not in DATA_FORMATS:
        raise ConfigError(f"[datasets.{NAME}] data_format = {fmt!r} is not allowed; allowed: "
                          + ", ".join(DATA_FORMATS))


def trial_table(root: Path, options: Mapping[str, Any]):
    """The trials to cut each session into (see the ``trial_table`` option)."""
    from sd_seed.tables import builtin_trials, read_trials

    choice = str(options.get("trial_table", "auto") or "auto")
    if choice == "builtin":
        return builtin_trials()
    if choice == "auto":
        own = root / TRIALS_FILE
        return read_trials(own) if own.is_file() else builtin_trials()
    path = Path(choice).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise ConfigError(f"[datasets.{NAME}] trial_table = {choice!r}: file {path} not found")
    return read_trials(path)


class SeedDataset(DatasetPlugin):
    name = NAME
    title = "SEED-V: emotion EEG, 16 subjects × 3 sessions × 15 film clips (Neuroscan CNT, 1000 Hz)"
    #: The original project's 20 channels, in its order.
    channels = ("FP1", "FP2", "F3", "F4", "FZ", "F7", "F8", "C3", "C4", "CZ", "P3", "P4", "PZ", "O1", "O2",
                "T7", "T8", "TP7", "TP8", "P8")
    hop_multiple = 8
    columns = ("emotion", "session", "trial")
    main_task = "emotion"
    #: The data's licence, a Hugging Face licence id (sd meta build's dataset cards):
    #: SEED-V: BCMI's own licence agreement.
    license = "other"
    options = {
        "trial_table": OptionSpec("auto", "trial spans and emotions: \"auto\" (<raw>/trials.csv if present, "
                                          "else SEED-V's table), \"builtin\", or a CSV file "
                                          "session,trial,emotion,start,stop"),
        "data_format": OptionSpec("auto", "sample width of the .cnt files: \"auto\" (from each file's "
                                          "header and samples), \"int32\" or \"int16\"", choices=DATA_FORMATS),
        "participants": OptionSpec("auto", "participants table: \"auto\" (Participants_info.xlsx/.csv, "
                                           "participants.csv/.tsv) or a file name in the raw folder"),
    }

    # -- discovery --------------------------------------------------------------------------

    def raw_found(self, root: Path) -> bool:
        return any(_CNT.match(p.name) for d in _folders(root) for p in d.iterdir())

    def _table(self, root: Path, options: Mapping[str, Any]) -> Path:
        from sd_seed.tables import find_participants_table

        choice = str(options.get("participants", "auto") or "auto")
        folders = _folders(root)
        if choice != "auto":
            p = Path(choice).expanduser()
            cands = [p] if p.is_absolute() else [d / p for d in folders]
            found = next((c for c in cands if c.is_file()), None)
            if found is None:
                raise DatasetError(f"participants table {choice!r} not found in {root}"
                                   + (f" or {root / SUBFOLDER}" if (root / SUBFOLDER).is_dir() else ""))
            return found
        found = find_participants_table(folders)
        if found is None:
            raise DatasetError(
                f"no participants table in {root}: SEED-V ships Participants_info.xlsx (subject, sex, "
                "age); put it (or a CSV with Subject,Sex,Age columns) there, or set participants")
        return found

    def find_subjects(self, root: Path, options: Mapping[str, Any]) -> list[Subject]:
        from sd_seed.tables import read_participants

        _check_options(options)
        if not root.is_dir():
            raise DatasetError(f"raw data of {NAME!r} not found at {root}")
        info = read_participants(self._table(root, options))
        trials = trial_table(root, options)
        sessions = sorted({t.session for t in trials})

        files: dict[tuple[str, int], Path] = {}
        for d in _folders(root):
            for p in sorted(d.iterdir()):
                m = _CNT.match(p.name)
                if not m:
                    continue
                key = (str(int(m.group(1))), int(m.group(2)))
                if key in files:
                    log.warning("%s: two files for subject %s session %s (%s, %s); using %s",
                                root, key[0], key[1], files[key].name, p.name, files[key].name)
                    continue
                files[key] = p
        cnt_dir = next((d for d in reversed(_folders(root)) if any(_CNT.match(p.name) for p in d.iterdir())),
                       root / SUBFOLDER if (root / SUBFOLDER).is_dir() else root)
        unknown = sorted({s for s, _ in files} - set(info), key=int)
        if unknown:
            log.warning("%s: .cnt files of subject(s) %s have no row in the participants table and are "
                        "left out", root, ", ".join(unknown))

        subjects = []
        for sid in sorted(info, key=int):
            labels = {"gender": info[sid]["gender"], "health": "H", "age": info[sid]["age"]}
            recs = []
            for session in sessions:
                path = files.get((sid, session))
                if path is None:
                    # listed without this session's file: one recording that reports it
                    recs.append(Recording(f"s{session}", cnt_dir / f"{sid}_{session}_<date>.cnt",
                                          {"session": session}, extra={"missing": True}))
                    continue
                for t in (t for t in trials if t.session == session):
                    recs.append(Recording(f"s{session}_t{t.trial:02d}", path,
                                          {"emotion": t.emotion, "session": session, "trial": t.trial},
                                          start=t.start, stop=t.stop))
            subjects.append(Subject(sid, labels, recs))
        return subjects

    # -- reading ----------------------------------------------------------------------------

    def read_raw(self, recording: Recording, options: Mapping[str, Any]):
        from sd_seed.cnt import read_raw_neuroscan

        if recording.extra.get("missing"):
            raise DatasetError(f"no file {recording.path.name} for session {recording.labels['session']} "
                               f"in {recording.path.parent}")
        raw = read_raw_neuroscan(recording.path, options.get("data_format", "auto"))
        if recording.stop is not None:
            length = raw.n_times / raw.info["sfreq"]
            if recording.stop > length + END_TOLERANCE:
                raise DatasetError(
                    f"{recording.path.name}: trial {recording.labels.get('trial')} "
                    f"({recording.start:g}–{recording.stop:g} s) runs past the end of the recording "
                    f"({length:.1f} s); the file is truncated or the trial table does not fit it")
        return raw

    def caption(self, row: Mapping[str, Any]) -> str:
        from sd_core.plugins.captions import describe_subject

        return describe_subject(row, WATCHING.get(str(row.get("emotion")), ""))

    # -- demo -------------------------------------------------------------------------------

    def write_demo(self, root: Path, seed: int = 0, **kw: Any) -> None:
        from sd_seed.demo import write_seed_v

        write_seed_v(root, seed, **kw)

    def demo_size(self, size: str, scale: float = 1.0) -> tuple[dict[str, Any], int]:
        """Full size: SEED-V's 16 subjects (times ``scale``) × 3 sessions × 15 clips of 183 s (the
        mean clip of SEED-V's trial tables; every demo clip has the same length); 66 channels of
        4-byte samples at 1000 Hz."""
        if size != "full":
            return super().demo_size(size, scale)
        n = max(2, round(16 * scale))
        seconds = 2.0 + 15 * (183.0 + 2.0)
        return {"n_subjects": n, "clip_seconds": 183.0, "sessions": (1, 2, 3)}, n * 3 * int(seconds * 1000 * 66 * 4)


@hookimpl
def sd_datasets():
    return [SeedDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("emotion", NAME, CLASSIFICATION, EMOTIONS, description="emotion of the film clip"),
        TaskSpec("gender", NAME, CLASSIFICATION, GENDERS, description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("seed_condition", NAME, CLASSIFICATION,
                 tuple(f"{e}_{g}" for e in EMOTIONS for g in GENDERS), ("emotion", "gender"),
                 "emotion × gender"),
    ]
