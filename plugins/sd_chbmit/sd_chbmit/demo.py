"""A small synthetic CHB-MIT in its native layout, read by the same code that reads the real data:
case folders with EDF recordings (256 Hz, the 23-derivation bipolar montage with its duplicate
``T8-P8``), ``chbNN-summary.txt`` files (single and numbered seizure blocks, one ``Channels
changed:`` block introducing dummy ``-`` channels), ``.seizures`` WFDB sidecars and ``SUBJECT-INFO``,
plus ``sd-demo-truth.json`` (every case's traits and seizure pattern, every recording's seizures,
look-alikes and :func:`~sd_core.signals.eeg_model.simulate` truth).

**Signals** (:mod:`sd_core.signals.eeg_model`). CHB-MIT was recorded at Boston Children's
Hospital at 256 Hz in the bipolar double-banana montage of the 10-20 system (Shoeb 2009, MIT PhD
thesis, ch. 4; PhysioNet CHB-MIT 1.0.0), with 60 Hz mains. A bipolar derivation "A-B" is the
difference of two referential electrode signals (Acharya et al. 2016, ACNS guideline 3, J Clin
Neurophysiol 33:312), so the 21 electrodes of :data:`ELECTRODES` are simulated and each derivation
is formed as A − B; the duplicate ``T8-P8`` is formed twice, each derivation with its own amplifier
noise (0.5 µV RMS, a choice), so the two copies differ by that noise only. The dummy ``-`` channels
of the changed montage are near-flat noise (1 µV RMS) and ``VNS`` 5 µV of noise, as before.

**Children.** CHB-MIT's cases are 1.5–22 years old (SUBJECT-INFO; the cases, genders and ages here
are the real ones). :func:`~sd_core.signals.eeg_model.draw_traits`' age effect is the adult one;
below 18 years the alpha rhythm is slower and rises with age towards adult values (Chiang et al.
2011, Clin Neurophysiol 122:1505, Fig. 2: about 8 Hz at 6 years, about 10 Hz by 18): the state
shifts the IAF by −0.17 Hz per year below 18 (:func:`iaf_shift`), never below 6.5 Hz. The
aperiodic exponent keeps draw_traits' linear age term, which makes children's background steeper,
the direction reported for childhood (Hill et al. 2022, Dev Cogn Neurosci 54:101076). Sex has no
effect on the signals (a choice: the sex differences Chiang et al. 2011 report are small beside the
age trend); the larger amplitudes of children's EEG are not modelled.

**Seizures** (:mod:`sd_core.signals.seizures`): rare and patient-specific. Each case draws one onset
pattern (``draw_pattern``: kind, focus, frequency and amplitude evolution; Perucca et al. 2014, Brain
137:183: a patient's seizures mostly share one), reused for all its seizures; each seizure's length
comes from ``duration`` (log-normal around 40 s, 10–120 s), its onset uniform in its share of the
recording, at least 30 s from either end (integer seconds, as the summary files give them).
The real set holds about 198 seizures in about 980 hours, about 0.3 % of the recorded time (Shoeb
2009). The demo is kept small: 4 seizures (in chb01, chb04 and chb06; chb02 and chb17 have none) in
83 minutes of recordings, so that at the default preprocessing (fs 125 Hz, nsamps 2000, overlap 0.5:
a 16 s window every 8 s) about 3 % of the windows are seizure windows (2.95 % for seed 0, 2.6–3.9 %
for seeds 0–5, depending on the drawn durations), and about as many at the demo's 4 s windows every
2 s. ``length_factor`` scales every recording and keeps the seizure counts: 6 gives recordings of
36–60 minutes (8.3 hours in all) and about 0.5–0.7 %, near the real rarity.

**Look-alikes** in non-seizure time, at least 20 s from any seizure, recorded with their times:
chewing (``artefacts.chewing``: rhythmic temporal muscle bursts, on the electrodes before the
derivations; 5–20 s, a choice) and movement (a burst of large irregular slow activity, 0.3–3 Hz,
50–150 µV RMS, with muscle, 20–100 Hz, 10–40 µV RMS, on all electrodes with per-electrode gains, for
2–5 s; Tatum et al. 2011, J Clin Neurophysiol 28:252, "movement" and "muscle" artefacts: high
amplitude, irregular, with superimposed myogenic activity; the amplitudes are a choice), each a
Poisson number per recording with mean 1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

FS = 256.0
LINE_HZ = 60.0  # Boston
#: The referential electrodes the derivations are made of.
ELECTRODES = ("FP1", "F7", "T7", "P7", "O1", "F3", "C3", "P3", "FP2", "F4", "C4", "P4", "O2", "F8",
              "T8", "P8", "FZ", "CZ", "PZ", "FT9", "FT10")
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

#: case → (gender, age as SUBJECT-INFO writes it, [(recording, seconds, seizures)]): ``seizures`` is
#: how many to draw (or a list of (start, stop) seconds to use as given); the montage changes (to
#: CHANGED) at the recording marked with a "*".
CASES: dict[str, tuple[str, float, list[tuple[str, float, Any]]]] = {
    "chb01": ("F", 11, [("chb01_01", 480, 0), ("chb01_03", 540, 1)]),
    "chb02": ("M", 11, [("chb02_16", 540, 0), ("chb02_19", 420, 0)]),
    "chb04": ("M", 22, [("chb04_05", 360, 0), ("chb04_28", 600, 2)]),
    "chb06": ("F", 1.5, [("chb06_01", 480, 1), ("*chb06_04", 540, 0)]),
    "chb17": ("F", 12, [("chb17a_03", 600, 0), ("chb17b_63", 420, 0)]),
}
ADULT_AGE, IAF_PER_YEAR, IAF_FLOOR = 18.0, 0.17, 6.5  # Chiang et al. 2011, Fig. 2
AMPLIFIER_UV = 0.5  # RMS noise of each derivation's amplifier channel (a choice)
EDGE_S, CLEAR_S = 30.0, 20.0  # seizures this far from the ends; look-alikes this far from seizures


def iaf_shift(traits, age: float | None) -> float:
    """The IAF shift (Hz) of a child: −0.17 Hz per year below 18, never below an IAF of 6.5 Hz."""
    if age is None or age >= ADULT_AGE:
        return 0.0
    return float(max(-IAF_PER_YEAR * (ADULT_AGE - age), IAF_FLOOR - traits.iaf))


def draw_case(rng: np.random.Generator, age: float | None) -> dict[str, Any]:
    """A case's traits, its paediatric IAF shift and its seizure pattern."""
    from sd_core.signals.eeg_model import draw_traits
    from sd_core.signals.seizures import draw_pattern

    traits = draw_traits(rng, age)
    return {"traits": traits, "iaf_shift": round(iaf_shift(traits, age), 3),
            "pattern": draw_pattern(rng, ELECTRODES)}


def place_seizures(rng: np.random.Generator, seconds: float, count) -> list[tuple[float, float]]:
    """``count`` seizures (or the given list), each in its own share of the recording."""
    from sd_core.signals.seizures import duration

    if not isinstance(count, (int, np.integer)):
        return [(float(a), float(b)) for a, b in count]
    out = []
    share = (seconds - 2 * EDGE_S) / max(int(count), 1)
    for k in range(int(count)):
        length = min(round(duration(rng)), share - 10.0)
        lo = EDGE_S + k * share
        start = round(lo + rng.uniform(0, share - length))
        out.append((float(start), float(start + length)))
    return out


def free_span(rng: np.random.Generator, seconds: float, length: float, busy: list) -> tuple[float, float] | None:
    """A span of ``length`` seconds clear of the ``busy`` spans (with CLEAR_S around each)."""
    for _ in range(50):
        start = float(rng.uniform(2.0, seconds - length - 2.0))
        if all(start + length + CLEAR_S <= a or start >= b + CLEAR_S for a, b in busy):
            return round(start, 2), round(start + length, 2)
    return None


def movement(rng: np.random.Generator, x: np.ndarray, fs: float, start: float, stop: float) -> tuple[np.ndarray, dict]:
    """A movement artefact on every electrode (µV): irregular slow activity with muscle."""
    from sd_core.signals.noise import spectral_noise

    c = x.shape[0]
    a, b = int(start * fs), min(x.shape[1], int(stop * fs))
    m = b - a
    slow = spectral_noise(rng, c, m, fs, lambda f: ((f > 0.3) & (f < 3.0)).astype(float) + 1e-9)
    emg = spectral_noise(rng, c, m, fs, lambda f: ((f > 20) & (f < min(100, fs / 2 - 1))).astype(float))
    slow_uv = rng.uniform(50, 150) * rng.uniform(0.3, 1.0, size=(c, 1))
    emg_uv = rng.uniform(10, 40) * rng.uniform(0.5, 1.0, size=(c, 1))
    ramp = np.minimum(1.0, np.minimum(np.arange(m) + 1, m - np.arange(m)) / (0.3 * fs))
    x[:, a:b] += (slow_uv * slow + emg_uv * emg) * ramp[None, :]
    return x, {"kind": "movement", "start": round(start, 3), "stop": round(stop, 3)}


def add_lookalikes(rng: np.random.Generator, x: np.ndarray, xyz: np.ndarray, seconds: float,
                   seizures: list) -> tuple[np.ndarray, list[dict]]:
    """Chewing and movement in non-seizure time (µV, on the electrodes)."""
    from sd_core.signals.artefacts import chewing

    busy, events = list(seizures), []
    kinds = ["chewing"] * int(rng.poisson(1.0)) + ["movement"] * int(rng.poisson(1.0))
    for kind in kinds:
        length = rng.uniform(5, 20) if kind == "chewing" else rng.uniform(2, 5)
        span = free_span(rng, seconds, length, busy)
        if span is None:
            continue
        if kind == "chewing":
            x, event = chewing(rng, x, xyz, FS, *span)
        else:
            x, event = movement(rng, x, FS, *span)
        busy.append(span)
        events.append(event)
    return x, sorted(events, key=lambda e: e["start"])


def derive(rng: np.random.Generator, x_uv: np.ndarray, names) -> np.ndarray:
    """(derivations, samples) µV: each "A-B" as A − B plus its amplifier's noise; dummies as noise."""
    index = {e: i for i, e in enumerate(ELECTRODES)}
    n = x_uv.shape[1]
    out = np.empty((len(names), n))
    for i, name in enumerate(names):
        if name == "-":
            out[i] = rng.standard_normal(n)
        elif name == "VNS":
            out[i] = 5.0 * rng.standard_normal(n)
        else:
            a, b = name.split("-")
            out[i] = x_uv[index[a]] - x_uv[index[b]] + AMPLIFIER_UV * rng.standard_normal(n)
    return out


def simulate_recording(rng: np.random.Generator, case: dict[str, Any], names, seconds: float,
                       seizures: list[tuple[float, float]]) -> tuple[np.ndarray, dict]:
    """(channels, samples) volts of one recording in montage ``names``, and its ground truth."""
    from sd_core.signals.eeg_model import State, positions, simulate
    from sd_core.signals.seizures import seizure

    state = State(iaf_shift=case["iaf_shift"])
    x, truth = simulate(rng, case["traits"], ELECTRODES, seconds, FS, state, line_hz=LINE_HZ)
    x *= 1e6
    xyz = positions(ELECTRODES)
    n = x.shape[1]
    for start, stop in seizures:
        x += seizure(rng, case["pattern"], xyz, ELECTRODES, n, FS, start, stop)
    x, lookalikes = add_lookalikes(rng, x, xyz, seconds, seizures)
    truth = {"seizures": [list(s) for s in seizures], "lookalikes": lookalikes, **truth}
    return derive(rng, x, names) * 1e-6, truth


def recording_signal(rng: np.random.Generator, names: tuple[str, ...], seconds: float, gender: str = "F",
                     seizures=(), case: dict[str, Any] | None = None, age: float = 10.0) -> np.ndarray:
    """(channels, samples) volts of one recording (of a new case of ``age`` unless ``case`` is
    given); ``gender`` has no effect on the signals."""
    case = draw_case(rng, age) if case is None else case
    return simulate_recording(rng, case, names, seconds, list(seizures))[0]


def write_edf(path: Path, data: np.ndarray, names: tuple[str, ...]) -> None:
    """EDF with CHB-MIT's channel names, duplicates and ``-`` dummies included: MNE exports unique
    placeholder names, then the header's label fields are set to the real names."""
    from sd_core.signals.edf import export_edf, relabel

    unique = [f"CH{i:02d}" for i in range(len(names))]
    export_edf(path, data, unique, FS)
    relabel(path, dict(enumerate(names)))


def write_case(rng: np.random.Generator, folder: Path, case: str, info: dict[str, Any], recs,
               length_factor: float) -> tuple[dict[str, list], dict[str, dict]]:
    """One case folder: its recordings, sidecars and summary file. Returns the seizures of every
    recording and every recording's ground truth."""
    from sd_chbmit.annotations import write_seizure_file
    from sd_chbmit.summary import format_summary

    folder.mkdir(exist_ok=True)
    blocks, written, truths = [], {}, {}
    montage = MONTAGE
    clock = dt.datetime(2010, 1, 1, 9, 0, 0) + dt.timedelta(minutes=int(rng.integers(0, 600)))
    for i, (name, seconds, count) in enumerate(recs):
        changed = name.startswith("*")
        name = name.lstrip("*")
        if changed:
            montage = CHANGED
        seconds = float(seconds) * length_factor
        seizures = place_seizures(rng, seconds, count)
        data, truth = simulate_recording(rng, info, montage, seconds, seizures)
        write_edf(folder / f"{name}.edf", data, montage)
        if seizures:
            write_seizure_file(folder / f"{name}.edf.seizures", seizures, FS)
        end = clock + dt.timedelta(seconds=seconds)
        blocks.append({"name": f"{name}.edf", "start": clock.strftime("%H:%M:%S"),
                       "end": end.strftime("%H:%M:%S"), "seizures": seizures,
                       "channels": montage if (i == 0 or changed) else None})
        clock = end + dt.timedelta(seconds=int(rng.integers(5, 60)))
        written[name] = seizures
        truths[name] = {"case": case, "montage": "changed" if montage is CHANGED else "standard", **truth}
    (folder / f"{case}-summary.txt").write_text(format_summary(blocks, FS))
    return written, truths


def write_chbmit(root: Path, seed: int = 0, cases: dict | None = None,
                 length_factor: float = 1.0) -> dict[str, dict[str, Any]]:
    """Write the demo data set under ``root`` (``length_factor`` scales every recording's length;
    the seizure counts stay, so longer recordings make seizures rarer).

    Returns what was written: {case: {gender, age, recordings: {recording: [(start, stop) s]},
    traits, iaf_shift, pattern}}; the same, with every recording's look-alikes and simulate's
    truth, goes to ``sd-demo-truth.json``.
    """
    from sd_chbmit.summary import format_subject_info
    from sd_core.signals.eeg_model import write_truth

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cases = CASES if cases is None else cases
    truth: dict[str, dict[str, Any]] = {}
    recordings: dict[str, dict] = {}
    (root / "SUBJECT-INFO").write_text(format_subject_info({c: (g, a) for c, (g, a, _) in cases.items()}))
    for case, (gender, age, recs) in cases.items():
        info = draw_case(rng, age)
        written, truths = write_case(rng, root / case, case, info, recs, length_factor)
        truth[case] = {"gender": gender, "age": int(age), "recordings": written, **info}
        recordings.update(truths)
    write_truth(root, truth, recordings)
    return truth
