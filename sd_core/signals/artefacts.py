"""The non-brain parts of a synthetic recording: electrodes (gain, noise, drift, line noise, a bad
channel) and artefacts (blinks, eye movements, muscle, electrode pops, chewing), in µV.

Each function returns what it put where, so that a demo writer can record it as ground truth and
tests and figures can find it again. The sources of the numbers are cited where they are used.
"""

from __future__ import annotations

import numpy as np

from sd_core.signals.noise import spectral_noise


def _draw_bad(rng: np.random.Generator, channels) -> dict | None:
    """A bad channel in one recording (or session) of ten: flat or noisy."""
    if rng.random() >= 0.1:
        return None
    i = int(rng.integers(len(channels)))
    return {"channel": str(channels[i]), "kind": "flat" if rng.random() < 0.5 else "noisy", "index": i}


def session_electrodes(rng: np.random.Generator, channels) -> dict:
    """The electrodes of one session (one application of the cap), for recordings made one after
    the other with it (EEGMAT's rest and arithmetic files): gains, noise levels, line pick-up and a
    bad channel as :func:`electrodes` draws them, drawn once."""
    c = len(channels)
    gain = np.exp(rng.normal(0, 0.1, size=(c, 1)))
    noise = np.exp(rng.normal(0, 0.4, size=(c, 1)))
    line_uv = float(np.exp(rng.normal(0, 1.0)))
    per_channel = line_uv * np.exp(rng.normal(0, 0.5, size=(c, 1)))
    return {"gain": gain, "noise": noise, "line_uv": line_uv, "per_channel": per_channel,
            "bad": _draw_bad(rng, channels)}


def _finish(rng, x, fs, line_hz, gain, line_uv, per_channel, bad) -> tuple[np.ndarray, dict]:
    """The bad channel and the line noise, and what the electrodes were."""
    n = x.shape[1]
    per_channel = per_channel.copy()
    if bad is not None:
        if bad["kind"] == "flat":
            x[bad["index"]] *= 0.05
        else:
            x[bad["index"]] += 30.0 * rng.standard_normal(n)
            per_channel[bad["index"]] *= 10
    if line_hz:
        t = np.arange(n) / fs
        x += per_channel * np.sin(2 * np.pi * line_hz * t[None, :] + rng.uniform(0, 2 * np.pi, size=(len(x), 1)))
    return x, {"gain": [round(float(g), 3) for g in gain[:, 0]], "line_hz": line_hz, "line_uv": round(line_uv, 3),
               "bad_channel": None if bad is None else {k: bad[k] for k in ("channel", "kind")}}


def _drift(rng, c: int, n: int, fs: float) -> np.ndarray:
    return 8.0 * spectral_noise(rng, c, n, fs, lambda f: (f < 0.3).astype(float) + 1e-9)


def electrodes(rng: np.random.Generator, x: np.ndarray, channels, fs: float,
               line_hz: float | None, session: dict | None = None) -> tuple[np.ndarray, dict]:
    """Per-channel gain and noise, slow drift, line noise, and sometimes a bad channel; with
    ``session`` (:func:`session_electrodes`), those of the session instead of new ones.

    - **Gain**: log-normal, log SD 0.1 per channel (a choice: electrode-skin impedances differ
      between sites and sessions; Kappenman & Luck 2010, Psychophysiology 47:888).
    - **Noise**: white, 1 µV RMS per channel times a log-normal factor (log SD 0.4), the order
      of amplifier plus electrode noise at low impedance (Kappenman & Luck 2010).
    - **Drift**: below 0.3 Hz, 8 µV RMS (a choice; skin potentials and electrode polarisation).
    - **Line noise**: a sinusoid at the mains frequency, log-normal around 1 µV with log SD 1.0
      per recording and 0.5 per channel (a choice: mains pick-up depends on impedance and
      surroundings and varies by orders of magnitude).
    - **A bad channel** in one recording of ten (a choice): flat (electrode off: 5 % of the
      signal) or noisy (30 µV of broadband noise and ten times the line noise).
    """
    c, n = x.shape
    if session is not None:
        x = x * session["gain"] + rng.standard_normal((c, n)) * session["noise"]
        x += _drift(rng, c, n, fs)
        x, info = _finish(rng, x, fs, line_hz, session["gain"], session["line_uv"], session["per_channel"],
                          session["bad"])
        return x, {**info, "session": True}
    gain = np.exp(rng.normal(0, 0.1, size=(c, 1)))
    x = x * gain + rng.standard_normal((c, n)) * np.exp(rng.normal(0, 0.4, size=(c, 1)))
    x += _drift(rng, c, n, fs)
    line_uv = float(np.exp(rng.normal(0, 1.0)))
    per_channel = line_uv * np.exp(rng.normal(0, 0.5, size=(c, 1)))
    return _finish(rng, x, fs, line_hz, gain, line_uv, per_channel, _draw_bad(rng, channels))


def _times(rng, per_min: float, seconds: float, min_gap: float = 0.0) -> list[float]:
    """Onsets of a Poisson process of ``per_min`` events a minute."""
    count = rng.poisson(per_min * seconds / 60.0)
    onsets = np.sort(rng.uniform(0, seconds, size=count))
    keep, last = [], -np.inf
    for t in onsets:
        if t - last >= min_gap:
            keep.append(float(t))
            last = t
    return keep


def _falloff(xyz: np.ndarray, point: np.ndarray, length_m: float) -> np.ndarray:
    d = np.sqrt(((xyz - point[None, :]) ** 2).sum(-1))
    return np.exp(-(d - d.min()) / length_m)


def add_artefacts(rng, x, xyz, channels, fs, traits, state, eyes_closed: bool) -> tuple[np.ndarray, list]:
    """Blinks, horizontal eye movements, muscle bursts and electrode pops, added to ``x`` (µV)."""
    n = x.shape[1]
    seconds = n / fs
    t = np.arange(n) / fs
    events: list[dict] = []
    # Blinks: 100–200 µV at Fp1/Fp2, 200–400 ms, falling off towards the back of the head
    # (Croft & Barry 2000, Neurophysiol Clin 30:5: propagation to Fz about 0.2, Cz about 0.05;
    # an exponential fall-off of 4 cm from the eyes gives these). Eyes closed: a tenth as many.
    eyes = np.array([0.0, 0.10, -0.03])
    blink_top = _falloff(xyz, eyes, 0.04)
    rate = traits.blinks_per_min * state.blinks * (0.1 if eyes_closed else 1.0)
    for onset in _times(rng, rate, seconds - 0.5, min_gap=0.5):
        amp, width = rng.uniform(100, 200), rng.uniform(0.2, 0.4)
        a, b = max(0, int((onset - 1.0) * fs)), min(n, int((onset + width + 1.0) * fs) + 1)
        shape = np.exp(-0.5 * ((t[a:b] - onset - width / 2) / (width / 5)) ** 2)
        x[:, a:b] += amp * blink_top[:, None] * shape[None, :]
        events.append({"kind": "blink", "start": round(onset, 3), "stop": round(onset + width, 3)})
    # Horizontal eye movements: a step of 20–60 µV of opposite sign at F7 and F8, held 0.5–2 s
    # (corneo-retinal dipole; Croft & Barry 2000), about 4 a minute with eyes open (a choice).
    lateral = np.tanh(xyz[:, 0] / 0.04) * _falloff(xyz, eyes, 0.05)
    for onset in _times(rng, 0.0 if eyes_closed else 4.0, seconds - 2.5, min_gap=2.5):
        amp, hold = rng.choice([-1, 1]) * rng.uniform(20, 60), rng.uniform(0.5, 2.0)
        a, b = max(0, int((onset - 1.0) * fs)), min(n, int((onset + hold + 1.0) * fs) + 1)
        shape = 0.5 * (np.tanh((t[a:b] - onset) / 0.04) - np.tanh((t[a:b] - onset - hold) / 0.04))
        x[:, a:b] += amp * lateral[:, None] * shape[None, :]
        events.append({"kind": "eye movement", "start": round(onset, 3), "stop": round(onset + hold, 3)})
    x, muscle = _muscle(rng, x, xyz, fs, traits.muscle_per_min * state.muscle)
    events += muscle
    # Electrode pops: a step of 50–300 µV decaying over about 0.3 s on one channel, about one in
    # five minutes (a choice; Tatum et al. 2011, J Clin Neurophysiol 28:252, "electrode pop").
    for onset in _times(rng, 0.2, seconds - 1.0):
        i, amp = int(rng.integers(len(channels))), rng.choice([-1, 1]) * rng.uniform(50, 300)
        after = t >= onset
        x[i, after] += amp * np.exp(-(t[after] - onset) / 0.3)
        events.append({"kind": "pop", "start": round(onset, 3), "stop": round(onset + 1.0, 3),
                       "channel": channels[i]})
    return x, events


def _muscle(rng, x, xyz, fs, per_min: float) -> tuple[np.ndarray, list]:
    """Muscle bursts: broadband 20–100 Hz noise, 10–40 µV RMS at the nearest temporal site,
    0.5–3 s long, strongest over the temporal and frontal periphery (Goncharova et al. 2003, Clin
    Neurophysiol 114:1580: EMG from the scalp muscles dominates the EEG above 20 Hz at peripheral
    sites)."""
    n = x.shape[1]
    seconds = n / fs
    events = []
    for onset in _times(rng, per_min, seconds - 3.0, min_gap=1.0):
        side = rng.choice([-1.0, 1.0])
        top = _falloff(xyz, np.array([side * 0.08, 0.0, -0.01]), 0.04)
        length, amp = rng.uniform(0.5, 3.0), rng.uniform(10, 40)
        a, b = int(onset * fs), min(n, int((onset + length) * fs))
        band = spectral_noise(rng, 1, b - a, fs, lambda f: ((f > 20) & (f < min(100, fs / 2 - 1))).astype(float))
        taper = np.hanning(b - a)
        x[:, a:b] += amp * top[:, None] * (band[0] * taper)[None, :]
        events.append({"kind": "muscle", "start": round(onset, 3), "stop": round(onset + length, 3),
                       "side": "left" if side < 0 else "right"})
    return x, events


def chewing(rng, x, xyz, fs, start: float, stop: float) -> tuple[np.ndarray, dict]:
    """Chewing: bursts of temporal muscle activity at 1–2 Hz on both sides (Tatum et al. 2011,
    J Clin Neurophysiol 28:252: rhythmic bursts of myogenic potentials), a seizure look-alike."""
    n = x.shape[1]
    t = np.arange(n) / fs
    rate = rng.uniform(1.0, 2.0)
    inside = (t >= start) & (t < stop)
    gate = inside * (np.sin(2 * np.pi * rate * t) > 0.3)
    top = _falloff(xyz, np.array([0.08, 0.0, -0.01]), 0.04) + _falloff(xyz, np.array([-0.08, 0.0, -0.01]), 0.04)
    band = spectral_noise(rng, 1, n, fs, lambda f: ((f > 20) & (f < min(100, fs / 2 - 1))).astype(float))[0]
    x += rng.uniform(20, 60) * top[:, None] * (band * gate)[None, :]
    return x, {"kind": "chewing", "start": round(start, 3), "stop": round(stop, 3)}
