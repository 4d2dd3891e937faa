"""A small synthetic EEGMAT in its native layout: ``SubjectNN_1.edf`` (rest) / ``SubjectNN_2.edf``
(mental arithmetic) and ``subject-info.csv``, read by the same code that reads the real data set,
plus ``sd-demo-truth.json``: every subject's drawn traits and every recording's state and
artefacts.

The signals come from :mod:`sd_core.signals.eeg_model` (subjects differ in alpha frequency and
amplitude, background, electrodes; recordings have drowsiness and waxing alpha). Recorded as in
EEGMAT (PhysioNet EEGMAT 1.0.0, "Study Methods"; Zyma et al. 2019, Data 4:14): 19 channels of the
10-20 system referenced to linked ears, ``A2-A1`` and ``ECG``, 500 Hz, eyes closed; filtered with a
30 Hz cut-off and a 50 Hz notch, and published as artefact-free segments, ICA having removed eye,
muscle and cardiac artefacts. The demo does the same: no blinks, eye movements, muscle, pops,
line noise or bad channel in the EEG, a 30 Hz low-pass (4th-order Butterworth, zero phase), and
the ECG channel kept. 36 healthy students, 9 men and 27 women, 18–26 years (NEMAR nm000109, the
data set's description); 24 good counters and 12 bad (EEGMAT README).

The arithmetic effect is drawn per subject from EEGMAT's own figures (relative band power, last
60 s of each real file, as read in sd's issue 25): relative alpha (8–13 Hz of 1–30 Hz) falls from
0.33 to 0.26 on average and is lower in 29 of 36 subjects; relative theta goes from 0.159 to 0.167
and is higher in 20 of 36. In absolute power, with the rest of the 1–30 Hz band unchanged, that
is alpha × 0.713 (0.33 → 0.26 needs A' = 0.26·0.67/0.74 of a total that was 0.33 alpha) and theta
× 0.94 (relative theta rises only because alpha falls). Each subject's absolute alpha power ratio
is log-normal with median 0.713 and the spread that leaves 29 of 36 subjects below 1 (σ = 0.39);
its theta power ratio has median 0.94 and σ = 0.35 (so that about half the subjects gain
relative theta). Some subjects therefore show no effect or the opposite one, as in the real data.
Sex, age and counting quality have no effect on the signals.
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

#: The arithmetic effect: log-normal power ratios (median, σ of the log), see the module docstring.
ALPHA_RATIO = (0.713, 0.39)
THETA_RATIO = (0.94, 0.35)
#: EEGMAT: 27 women and 9 men, 18–26 years (NEMAR nm000109); 24 good counters and 12 bad (README).
P_FEMALE, P_GOOD = 27 / 36, 24 / 36
#: EEGMAT's filter: a 30 Hz cut-off (PhysioNet EEGMAT, Study Methods)
LOWPASS_HZ = 30.0


def _ecg(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """A simple ECG (volts): R waves of about 0.8 mV at 60–80 beats per minute over a little noise."""
    t = np.arange(n) / fs
    rate = rng.uniform(60, 80)
    beats = np.cumsum(rng.normal(60 / rate, 0.03, size=int(n / fs * 1.5) + 2))
    x = np.zeros(n)
    for b in beats[beats < t[-1]]:
        x += 800e-6 * np.exp(-0.5 * ((t - b) / 0.012) ** 2) - 150e-6 * np.exp(-0.5 * ((t - b - 0.25) / 0.06) ** 2)
    return x + rng.normal(0, 10e-6, n)


def draw_subject(rng: np.random.Generator, age: int) -> dict[str, Any]:
    """A subject's traits and arithmetic effect (power ratios)."""
    from sd_core.signals.eeg_model import draw_traits

    traits = draw_traits(rng, age)
    alpha = float(ALPHA_RATIO[0] * np.exp(rng.normal(0, ALPHA_RATIO[1])))
    theta = float(THETA_RATIO[0] * np.exp(rng.normal(0, THETA_RATIO[1])))
    return {"traits": traits, "alpha_power_ratio": round(alpha, 4), "theta_power_ratio": round(theta, 4)}


def subject_signal(rng: np.random.Generator, seconds: float, subject: dict[str, Any], math: bool
                   ) -> tuple[np.ndarray, dict]:
    """(21, samples) volts: the 19 EEG channels, A2-A1 and ECG of one recording, and its truth.
    The subject's two recordings share one session's electrodes (``subject["session"]``, drawn on
    first use): EEGMAT recorded rest and then arithmetic with the same cap (Zyma et al. 2019)."""
    from sd_core.signals.artefacts import session_electrodes
    from sd_core.signals.eeg_model import State, simulate

    if "session" not in subject:
        subject["session"] = {**session_electrodes(rng, EEG + ("A1", "A2")), "bad": None}  # artefact-free

    state = State()
    if math:
        state = State(alpha=float(np.sqrt(subject["alpha_power_ratio"])),
                      theta=float(np.sqrt(subject["theta_power_ratio"])))
    from scipy.signal import butter, sosfiltfilt

    x, truth = simulate(rng, subject["traits"], EEG + ("A1", "A2"), seconds, FS, state, line_hz=None,
                        artefacts=False, eyes_closed=True, session=subject["session"])
    x = sosfiltfilt(butter(4, LOWPASS_HZ, fs=FS, output="sos"), x, axis=1)
    eeg = x[: len(EEG)] - x[len(EEG):].mean(0, keepdims=True)  # linked-ear reference
    ears = x[len(EEG) + 1] - x[len(EEG)]  # A2-A1
    n = eeg.shape[1]
    return np.vstack([eeg, ears[None, :], _ecg(rng, n, FS)[None, :]]), truth


def _people(rng: np.random.Generator, n_subjects: int) -> dict[str, dict[str, Any]]:
    people = {}
    for i in range(n_subjects):
        people[f"Subject{i:02d}"] = {
            "gender": "F" if rng.random() < P_FEMALE else "M",
            "age": int(rng.integers(18, 27)),
            "count_quality": int(rng.random() < P_GOOD),
            "subtractions": round(float(rng.uniform(5, 30)), 2),
            "files": {},
        }
    return people


def write_eegmat(root: Path, seed: int = 0, n_subjects: int = 8, rest_seconds: float = 60.0,
                 math_seconds: float = 60.0, subfolder: str | None = None) -> dict[str, dict[str, Any]]:
    """Write the demo data set under ``root`` (EDF files in ``root/subfolder`` if given).

    Returns what was written: {subject: {gender, age, count_quality, files: {stem: doing_math},
    traits, alpha_power_ratio, theta_power_ratio}}; the same, with each recording's state and
    artefacts, goes to ``sd-demo-truth.json``.
    """
    from sd_core.signals.edf import export_edf
    from sd_core.signals.eeg_model import write_truth

    root = Path(root)
    edf_dir = root / subfolder if subfolder else root
    edf_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = _people(rng, n_subjects)
    with open(root / "subject-info.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(HEADER)
        for sid, t in truth.items():
            w.writerow([sid, t["age"], t["gender"], 2011, t["subtractions"], t["count_quality"]])
    types = ["eeg"] * (len(LABELS) - 1) + ["ecg"]
    recordings: dict[str, dict] = {}
    for sid, t in truth.items():
        t.update(draw_subject(rng, t["age"]))
        for k, seconds, math in (("1", rest_seconds, False), ("2", math_seconds, True)):
            data, rec = subject_signal(rng, seconds, t, math)
            export_edf(edf_dir / f"{sid}_{k}.edf", data, LABELS, FS, types)
            t["files"][f"{sid}_{k}"] = int(math)
            recordings[f"{sid}_{k}"] = rec
        t.pop("session")  # recorded in each recording's truth ("electrodes")
    write_truth(root, truth, recordings)
    return truth
