"""A small synthetic CHB-MIT in its native layout, read by the same code that reads the real data:
case folders with EDF recordings (256 Hz, the 23-derivation bipolar montage with its duplicate
``T8-P8``), ``chbNN-summary.txt`` files (single and numbered seizure blocks, one ``Channels
changed:`` block introducing dummy ``-`` channels), ``.seizures`` WFDB sidecars and ``SUBJECT-INFO``.

Learnable effect: a high-amplitude rhythmic 3 Hz discharge on most derivations during seizures
(and, more faintly, a slower alpha peak in boys).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

FS = 256.0
#: The montage of most CHB-MIT recordings (23 signals; T8-P8 twice).
MONTAGE = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
    "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    "FZ-CZ", "CZ-PZ", "P7-T7", "T7-FT9", "FT9-FT10", "FT10-T8", "T8-P8",
)
#: A later montage with dummy channels, as cases like chb13 have after "Channels changed:".
CHANGED = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "-", "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "-",
    "FP2-F4", "F4-C4", "C4-P4", "P4-O2", "-", "FP2-F8", "F8-T8", "T8-P8", "P8-O2", "-",
    "FZ-CZ", "CZ-PZ", "P7-T7", "T7-FT9", "FT9-FT10", "FT10-T8", "T8-P8", "VNS",
)

#: case → (gender, age as SUBJECT-INFO writes it, [(recording, seconds, [(seizure start, end) s])]);
#: the montage changes (to CHANGED) at the recording marked with a "*".
CASES: dict[str, tuple[str, float, list[tuple[str, float, list[tuple[float, float]]]]]] = {
    "chb01": ("F", 11, [("chb01_01", 180, []), ("chb01_03", 240, [(100, 140)])]),
    "chb02": ("M", 11, [("chb02_16", 240, [(130, 165)]), ("chb02_19", 150, [])]),
    "chb04": ("M", 22, [("chb04_05", 150, []), ("chb04_28", 300, [(50, 80), (200, 255)])]),
    "chb06": ("F", 1.5, [("chb06_01", 200, [(20, 45)]), ("*chb06_04", 240, [(60, 90), (180, 200)])]),
    "chb17": ("F", 12, [("chb17a_03", 200, [(150, 190)]), ("chb17b_63", 150, [])]),
}


def recording_signal(rng: np.random.Generator, names: tuple[str, ...], seconds: float, gender: str,
                     seizures: list[tuple[float, float]]) -> np.ndarray:
    """(channels, samples) volts of one recording; dummy channels are nearly flat."""
    from sd_core.signals.synthetic import Rhythm, discharge, eeg

    n = int(round(seconds * FS))
    alpha = Rhythm(8.5 if gender == "M" else 9.5, 8.0, 0.08)
    x = eeg(rng, len(names), n, FS, background_uv=20.0, rhythms=(alpha,), line_hz=60.0, line_uv=1.0)
    for start, stop in seizures:
        freq = float(rng.uniform(2.7, 3.3))
        wave = discharge(n, FS, start, stop, freq=freq, amplitude_uv=220.0)
        gains = rng.uniform(0.6, 1.4, size=len(names)) * rng.choice([-1.0, 1.0], size=len(names))
        x += gains[:, None] * wave[None, :]
    for i, name in enumerate(names):
        if name == "-":
            x[i] = rng.normal(0, 1e-6, n)
        elif name == "VNS":
            x[i] = rng.normal(0, 5e-6, n)
    return x


def write_edf(path: Path, data: np.ndarray, names: tuple[str, ...]) -> None:
    """EDF with CHB-MIT's channel names, duplicates and ``-`` dummies included: MNE exports unique
    placeholder names, then the header's label fields are set to the real names."""
    from sd_core.signals.edf import export_edf, relabel

    unique = [f"CH{i:02d}" for i in range(len(names))]
    export_edf(path, data, unique, FS)
    relabel(path, dict(enumerate(names)))


def write_chbmit(root: Path, seed: int = 0, cases: dict | None = None) -> dict[str, dict[str, Any]]:
    """Write the demo data set under ``root``.

    Returns what was written: {case: {gender, age, recordings: {recording: [(start, stop) s]}}}.
    """
    from sd_chbmit.annotations import write_seizure_file
    from sd_chbmit.summary import format_subject_info, format_summary

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cases = CASES if cases is None else cases
    truth: dict[str, dict[str, Any]] = {}
    (root / "SUBJECT-INFO").write_text(format_subject_info({c: (g, a) for c, (g, a, _) in cases.items()}))
    for case, (gender, age, recs) in cases.items():
        folder = root / case
        folder.mkdir(exist_ok=True)
        truth[case] = {"gender": gender, "age": int(age), "recordings": {}}
        blocks = []
        montage = MONTAGE
        clock = dt.datetime(2010, 1, 1, 9, 0, 0) + dt.timedelta(minutes=int(rng.integers(0, 600)))
        for i, (name, seconds, seizures) in enumerate(recs):
            changed = name.startswith("*")
            name = name.lstrip("*")
            if changed:
                montage = CHANGED
            data = recording_signal(rng, montage, seconds, gender, seizures)
            write_edf(folder / f"{name}.edf", data, montage)
            if seizures:
                write_seizure_file(folder / f"{name}.edf.seizures", seizures, FS)
            end = clock + dt.timedelta(seconds=seconds)
            blocks.append({"name": f"{name}.edf", "start": clock.strftime("%H:%M:%S"),
                           "end": end.strftime("%H:%M:%S"), "seizures": seizures,
                           "channels": montage if (i == 0 or changed) else None})
            clock = end + dt.timedelta(seconds=int(rng.integers(5, 60)))
            truth[case]["recordings"][name] = [(float(a), float(b)) for a, b in seizures]
        (folder / f"{case}-summary.txt").write_text(format_summary(blocks, FS))
    return truth
