"""Synthetic seizures for the CHB-MIT-like demo: a patient-specific onset pattern whose frequency
and spread evolve within each seizure, added to the background EEG of :mod:`eeg_model`.

- **Onset patterns** differ between patients and repeat within a patient (Perucca, Dubeau &
  Gotman 2014, Brain 137:183, Table 2: low-voltage fast activity is the commonest focal onset,
  then rhythmic spiking and rhythmic slow activity; a patient's seizures mostly share one).
  Here: low-voltage fast activity (20–30 Hz, 10–20 µV, slowing to 4–8 Hz and growing to 50–100
  µV), rhythmic delta-theta (3–7 Hz slowing to 2–4 Hz, 50–150 µV) and generalised spike-wave
  (2.5–4 Hz, 100–250 µV, the childhood pattern of Sadleir et al. 2006, Neurology 67:413).
- **Evolution**: frequency sweeps from its onset to its end value, amplitude rises over the first
  third, and the field widens from the focus (3 cm) to a hemisphere (8 cm), the evolution in
  frequency, amplitude and distribution that defines an electrographic seizure (Hirsch et al.
  2021, ACNS terminology, J Clin Neurophysiol 38:1, section 6).
- **Duration and rarity**: CHB-MIT holds 198 seizures in about 980 hours (Shoeb 2009, MIT PhD
  thesis, ch. 4; PhysioNet CHB-MIT 1.0.0): about 0.3 % of recorded time; durations are
  log-normal around 40 s within 10–120 s here (the range the thesis' seizures mostly span).
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("low-voltage fast", "rhythmic delta-theta", "spike-wave")


def draw_pattern(rng: np.random.Generator, electrodes) -> dict:
    """A patient's seizure pattern: kind, focus electrode, frequencies (Hz) and amplitudes (µV)."""
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    focus = str(electrodes[int(rng.integers(len(electrodes)))])
    if kind == "low-voltage fast":
        f0, f1, a0, a1 = rng.uniform(20, 30), rng.uniform(4, 8), rng.uniform(10, 20), rng.uniform(50, 100)
    elif kind == "rhythmic delta-theta":
        f0, f1, a0, a1 = rng.uniform(3, 7), rng.uniform(2, 4), rng.uniform(30, 60), rng.uniform(50, 150)
    else:
        f0 = rng.uniform(2.5, 4.0)
        f1, a0, a1 = f0 * rng.uniform(0.8, 0.95), rng.uniform(80, 120), rng.uniform(100, 250)
    return {"kind": kind, "focus": focus, "start_hz": round(float(f0), 2), "end_hz": round(float(f1), 2),
            "start_uv": round(float(a0), 1), "end_uv": round(float(a1), 1)}


def duration(rng: np.random.Generator) -> float:
    """A seizure's length in seconds: log-normal around 40 s, within 10–120 s."""
    return float(np.clip(40.0 * np.exp(rng.normal(0, 0.5)), 10.0, 120.0))


def seizure(rng: np.random.Generator, pattern: dict, xyz: np.ndarray, electrodes, n: int, fs: float,
            start: float, stop: float) -> np.ndarray:
    """(electrodes, n) µV of one seizure between ``start`` and ``stop`` seconds, zero elsewhere."""
    t = np.arange(n) / fs
    inside = (t >= start) & (t < stop)
    u = np.clip((t - start) / max(stop - start, 1e-6), 0, 1)  # 0 → 1 through the seizure
    freq = pattern["start_hz"] + (pattern["end_hz"] - pattern["start_hz"]) * u
    phase = 2 * np.pi * np.cumsum(freq) / fs + rng.uniform(0, 2 * np.pi)
    if pattern["kind"] == "spike-wave":
        wave = np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 4 - 0.6 * np.sin(phase - 0.6)
        spread = np.full(n, 0.12)  # generalised from the start
    else:
        wave = np.sin(phase) + 0.3 * np.sin(2 * phase + 0.5)
        spread = 0.03 + 0.05 * np.minimum(u * 1.5, 1)
    amp = pattern["start_uv"] + (pattern["end_uv"] - pattern["start_uv"]) * np.minimum(u * 3, 1)
    taper = np.minimum(1, np.minimum(t - start, stop - t).clip(0) / 1.0)
    focus = xyz[list(electrodes).index(pattern["focus"])]
    d2 = ((xyz - focus[None, :]) ** 2).sum(-1)
    field = np.exp(-d2[:, None] / (2 * spread[None, :] ** 2))
    jitter = 1 + 0.2 * rng.standard_normal((len(xyz), 1))
    return np.where(inside[None, :], field * jitter * (amp * wave * taper)[None, :], 0.0)
