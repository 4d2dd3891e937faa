"""A small synthetic SEED-V in its native layout, read by the same code as the real one::

    Participants_info.xlsx          Subject, Sex, Age
    trials.csv                      the demo's own, shortened trial table (session,trial,emotion,start,stop)
    EEG_raw/1_1_20180804.cnt        Neuroscan CNT, 66 channels, 1000 Hz, 32-bit samples
    ...

Real SEED-V sessions last about 57 minutes; the demo keeps the order of emotions of session 1 but
shortens every clip to a few seconds, and declares those spans in ``trials.csv`` (which the plugin's
``trial_table = "auto"`` picks up; the real data set has no such file and gets DESIGN's table).

Learnable effects: band-power shifts per emotion (sad: strong alpha and little beta; fear: weak
alpha, more beta; happy: more beta and gamma; disgust: more theta and gamma; neutral in between),
and an alpha peak 0.6 Hz faster for women than for men.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sd_seed.tables import EMOTIONS, SEED_V_TRIALS, Trial, write_trials

FS = 1000
#: SEED-V's 62 EEG channels (ESI NeuroScan 62-channel cap, upper-case names) and 4 more.
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "M1", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "M2",
    "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6",
    "PO8", "CB1", "O1", "OZ", "O2", "CB2", "HEO", "VEO",
)
#: µV of theta (6 Hz), alpha (peak), beta (20 Hz), gamma (35 Hz) per emotion.
BANDS = {
    "disgust": (9.0, 9.0, 4.0, 3.5),
    "fear": (6.0, 6.0, 7.0, 2.5),
    "sad": (5.0, 17.0, 2.5, 1.0),
    "neutral": (4.0, 12.0, 3.5, 1.5),
    "happy": (4.0, 10.0, 6.0, 4.0),
}
REST = (4.0, 11.0, 3.0, 1.2)  # between clips
#: (sex, age) of the demo subjects
PEOPLE = (("Female", 21), ("Male", 23), ("Female", 24), ("Male", 22), ("Female", 26), ("Male", 20))


def demo_trials(session: int = 1, lead: float = 2.0, clip: float = 8.0, gap: float = 2.0) -> list[Trial]:
    """Session ``session``'s 15 clips in SEED-V's order of emotions, each ``clip`` seconds long."""
    emos = SEED_V_TRIALS[session][0]
    return [Trial(session, i + 1, EMOTIONS[e], lead + i * (clip + gap), lead + i * (clip + gap) + clip)
            for i, e in enumerate(emos)]


def segment(rng: np.random.Generator, seconds: float, bands: tuple[float, float, float, float],
            alpha_peak: float) -> np.ndarray:
    """(66, samples) volts of one stretch with the given band amplitudes."""
    from sd_core.signals.synthetic import Rhythm, eeg, narrowband

    n = int(round(seconds * FS))
    c = len(CHANNELS)
    theta, alpha, beta, gamma = bands
    x = eeg(rng, c, n, FS, background_uv=14.0, rhythms=(), line_hz=50.0, line_uv=1.0) * 1e6
    post = np.array([1.5 if ch.startswith(("O", "PO", "CB")) else 1.2 if ch.startswith("P") else 0.8
                     for ch in CHANNELS])[:, None]
    front = np.array([1.3 if ch.startswith(("F", "AF")) else 0.8 for ch in CHANNELS])[:, None]
    shared = narrowband(rng, 1, n, FS, Rhythm(alpha_peak, alpha, 0.05))
    x += post * (shared + narrowband(rng, c, n, FS, Rhythm(alpha_peak, alpha * 0.3, 0.05)))
    x += front * narrowband(rng, c, n, FS, Rhythm(6.0, theta, 0.12))
    x += narrowband(rng, c, n, FS, Rhythm(20.0, beta, 0.2))
    x += front * narrowband(rng, c, n, FS, Rhythm(35.0, gamma, 0.15))
    x[-2:] *= 0.3  # HEO/VEO: bipolar eye channels, little EEG
    return x * 1e-6


def session_chunks(rng: np.random.Generator, trials: list[Trial], gender: str, tail: float = 2.0) -> Iterator[np.ndarray]:
    """The session's signal, stretch by stretch (lead-in, clip, gap, clip, ...), for streaming."""
    peak = 10.4 if gender == "F" else 9.8
    t = 0.0
    for tr in sorted(trials, key=lambda x: x.start):
        if tr.start > t:
            yield segment(rng, tr.start - t, REST, peak)
        yield segment(rng, tr.stop - tr.start, BANDS[tr.emotion], peak)
        t = tr.stop
    yield segment(rng, tail, REST, peak)


def write_participants_xlsx(path: Path, people: list[tuple[str, str, int]]) -> None:
    """``Participants_info.xlsx`` as SEED-V ships it: Subject, Sex, Age (a title row above)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Participants"
    sheet.append(["SEED-V participants (sd demo, synthetic)"])
    sheet.append(["Subject", "Sex", "Age"])
    for sid, sex, age in people:
        sheet.append([int(sid), sex, age])
    book.save(path)


def write_seed_v(root: Path, seed: int = 0, n_subjects: int = 5, session: int = 1,
                 clip_seconds: float = 8.0) -> dict[str, dict[str, Any]]:
    """Write the demo under ``root``; returns {subject: {gender, age, file, trials: [Trial]}}."""
    from sd_seed.cnt import write_cnt

    root = Path(root)
    raw_dir = root / "EEG_raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    trials = demo_trials(session, clip=clip_seconds)
    write_trials(root / "trials.csv", trials)
    truth: dict[str, dict[str, Any]] = {}
    people = []
    for i in range(n_subjects):
        sid = str(i + 1)
        sex, age = PEOPLE[i % len(PEOPLE)]
        gender = sex[0]
        date = datetime(2018, 8, 4, 9, 30) + timedelta(days=7 * i)
        path = raw_dir / f"{sid}_{session}_{date:%Y%m%d}.cnt"
        events = [(t.start, 1) for t in trials] + [(t.stop, 2) for t in trials]
        write_cnt(path, session_chunks(rng, trials, gender), CHANNELS, FS, events=sorted(events),
                  patient=f"subject {sid}", sex=gender, date=date)
        truth[sid] = {"gender": gender, "age": age, "file": path.name, "trials": trials}
        people.append((sid, sex, age))
    write_participants_xlsx(root / "Participants_info.xlsx", people)
    return truth
