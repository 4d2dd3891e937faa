"""A small synthetic EEGMAT in its native layout: ``SubjectNN_1.edf`` / ``SubjectNN_2.edf`` and
``subject-info.csv``, read by the same code that reads the real data set.

Learnable effects: much less (posterior) alpha and a little more frontal theta and beta during
mental arithmetic; the alpha peak is at 10.5 Hz for women and 9.5 Hz for men; older subjects have
a slightly slower, weaker alpha.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

#: The channels of an EEGMAT EDF file, in the file's order.
EEG = ("Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6",
       "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz")
LABELS = (*(f"EEG {c}" for c in EEG), "EEG A2-A1", "ECG ECG")
FS = 500.0
HEADER = ("Subject", "Age", "Gender", "Recording year", "Number of subtractions", "Count quality")

_POSTERIOR = {"O1": 1.6, "O2": 1.6, "P3": 1.3, "P4": 1.3, "Pz": 1.4, "T5": 1.2, "T6": 1.2}
_FRONTAL = {"Fp1", "Fp2", "F3", "F4", "F7", "F8", "Fz"}


def _ecg(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """A crude ECG (volts): narrow R waves at about 70 beats per minute over a little noise."""
    t = np.arange(n) / fs
    beats = np.cumsum(rng.normal(60 / 70, 0.03, size=int(n / fs * 1.5) + 2))
    x = np.zeros(n)
    for b in beats[beats < t[-1]]:
        x += 800e-6 * np.exp(-0.5 * ((t - b) / 0.012) ** 2) - 150e-6 * np.exp(-0.5 * ((t - b - 0.25) / 0.06) ** 2)
    return x + rng.normal(0, 10e-6, n)


def subject_signal(rng: np.random.Generator, seconds: float, gender: str, age: int, math: bool) -> np.ndarray:
    """(21, samples) volts: the 19 EEG channels, A2-A1 and ECG of one recording."""
    from sd_core.signals.synthetic import Rhythm, eeg, narrowband

    n = int(round(seconds * FS))
    x = eeg(rng, len(EEG), n, FS, background_uv=18.0, rhythms=(), line_hz=50.0, line_uv=1.5) * 1e6
    peak = (10.5 if gender == "F" else 9.5) - 0.05 * (age - 20)
    alpha_uv = (4.0 if math else 16.0) * (1.0 - 0.01 * (age - 20))
    alpha = narrowband(rng, 1, n, FS, Rhythm(peak, alpha_uv, 0.05))[0]
    mix = narrowband(rng, len(EEG), n, FS, Rhythm(peak, alpha_uv * 0.3, 0.05))
    gains = np.array([_POSTERIOR.get(c, 0.7) for c in EEG])[:, None]
    x += gains * (alpha[None, :] + mix)
    if math:
        front = np.array([1.0 if c in _FRONTAL else 0.4 for c in EEG])[:, None]
        x += front * narrowband(rng, len(EEG), n, FS, Rhythm(6.0, 7.0, 0.15))
        x += narrowband(rng, len(EEG), n, FS, Rhythm(20.0, 5.0, 0.25))
    ref = eeg(rng, 1, n, FS, background_uv=6.0, rhythms=(), line_hz=50.0) * 1e6
    out = np.vstack([x * 1e-6, ref * 1e-6, _ecg(rng, n, FS)[None, :]])
    return out


def write_eegmat(root: Path, seed: int = 0, n_subjects: int = 8, rest_seconds: float = 60.0,
                 math_seconds: float = 60.0, subfolder: str | None = None) -> dict[str, dict[str, Any]]:
    """Write the demo data set under ``root`` (EDF files in ``root/subfolder`` if given).

    Returns what was written: {subject: {gender, age, count_quality, files: {stem: doing_math}}}.
    """
    from sd_core.signals.edf import export_edf

    root = Path(root)
    edf_dir = root / subfolder if subfolder else root
    edf_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth: dict[str, dict[str, Any]] = {}
    for i in range(n_subjects):
        sid = f"Subject{i:02d}"
        gender = "FM"[i % 2]
        age = int(18 + (i * 5) % 9)
        quality = int((i // 2) % 2 == 0) if i < 4 else int(i % 3 != 0)
        truth[sid] = {"gender": gender, "age": age, "count_quality": quality, "files": {},
                      "subtractions": round(float(rng.uniform(5, 30)), 2)}
    with open(root / "subject-info.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(HEADER)
        for sid, t in truth.items():
            w.writerow([sid, t["age"], t["gender"], 2011, t["subtractions"], t["count_quality"]])
    types = ["eeg"] * (len(LABELS) - 1) + ["ecg"]
    for sid, t in truth.items():
        for k, seconds, math in (("1", rest_seconds, False), ("2", math_seconds, True)):
            data = subject_signal(rng, seconds, t["gender"], t["age"], math)
            export_edf(edf_dir / f"{sid}_{k}.edf", data, LABELS, FS, types)
            t["files"][f"{sid}_{k}"] = int(math)
    return truth
