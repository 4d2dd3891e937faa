"""A test-only dataset plugin: synthetic EDF recordings with labelled events.

Layout under the raw root::

    participants.csv                  subject,gender,age,health
    <subject>/<subject>_run<N>.edf    EDF, 256 Hz, 10–20 channels named like "EEG Fp1"
    <subject>/<subject>_run<N>.events "start stop" seconds per line (optional)

A window is labelled ``event = 1`` when it overlaps an event by at least ``event_overlap``
(a plugin option), else 0. Events carry a high-amplitude 3 Hz discharge on every channel.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import DatasetError
from sd_core.specs import CLASSIFICATION, OptionSpec, TaskSpec

CHANNELS = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
            "F7", "F8", "T3", "T4", "T5", "T6", "Fz", "Cz", "Pz")
FS = 256.0


class TestEEG(DatasetPlugin):
    name = "testeeg"
    title = "synthetic EDF recordings for tests"
    channels = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
                "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz")  # new names: aliases match
    columns = ("event",)
    options = {"event_overlap": OptionSpec(0.5, "fraction of a window that must overlap an event")}

    def find_subjects(self, root, options):
        table = root / "participants.csv"
        if not table.is_file():
            raise DatasetError(f"{table} is missing")
        with open(table, newline="") as fh:
            people = list(csv.DictReader(fh))
        out = []
        for p in people:
            sid = p["subject"]
            recs = []
            for edf in sorted((root / sid).glob("*.edf")):
                events = edf.with_suffix(".events")
                spans = []
                if events.is_file():
                    spans = [tuple(map(float, line.split())) for line in events.read_text().splitlines() if line]
                recs.append(Recording(edf.stem, edf, {}, extra={"events": spans}))
            out.append(Subject(sid, {"gender": p["gender"], "age": int(p["age"]), "health": p["health"]}, recs))
        return out

    def label_windows(self, recording, spans, options):
        need = options["event_overlap"]
        out = []
        for a, b in spans:
            ov = sum(max(0.0, min(b, e1) - max(a, e0)) for e0, e1 in recording.extra["events"])
            out.append({"event": int(ov >= need * (b - a))})
        return out

    def write_demo(self, root: Path, seed: int = 0, n_subjects: int = 6, seconds: float = 40.0,
                   runs: int = 2) -> None:
        write_testeeg(root, seed, n_subjects, seconds, runs)


def write_testeeg(root: Path, seed: int = 0, n_subjects: int = 6, seconds: float = 40.0, runs: int = 2,
                  events: bool = True) -> dict:
    """Write the data set; returns {recording path: [(start, stop), ...]} of the events written."""
    import mne

    from sd_core.signals.synthetic import Rhythm, discharge, eeg

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    with open(root / "participants.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "gender", "age", "health"])
        for i in range(n_subjects):
            w.writerow([f"S{i:02d}", "FM"[i % 2], 20 + 3 * i, ["H", "PD"][(i // 2) % 2]])
    for i in range(n_subjects):
        sid = f"S{i:02d}"
        (root / sid).mkdir(exist_ok=True)
        for r in range(runs):
            n = int(seconds * FS)
            data = eeg(rng, len(CHANNELS), n, FS, rhythms=(Rhythm(9.0 + (i % 2), 12.0),))
            spans = []
            if events and r == 0:
                start = float(rng.uniform(5, seconds - 15))
                spans = [(round(start, 2), round(start + 10.0, 2))]
                for a, b in spans:
                    data += discharge(n, FS, a, b)[None, :]
                (root / sid / f"{sid}_run{r}.events").write_text("".join(f"{a} {b}\n" for a, b in spans))
            info = mne.create_info([f"EEG {c}" for c in CHANNELS], FS, "eeg")
            raw = mne.io.RawArray(data, info, verbose="error")
            path = root / sid / f"{sid}_run{r}.edf"
            mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
            written[path] = spans
    return written


@hookimpl
def sd_datasets():
    return [TestEEG()]


@hookimpl
def sd_tasks():
    return [TaskSpec("event", "testeeg", CLASSIFICATION, ("0", "1"))]
