"""A generative model of scalp EEG for the embedded demo data sets: subjects that differ more than
classes do, recordings that change state, and the artefacts of real recordings.

One recording is built in four layers, in volts at the end (MNE's unit):

1. **Rhythms and background, per electrode**: an aperiodic 1/f^χ background, a posterior alpha
   rhythm at the subject's individual alpha frequency, frontal-midline theta and central beta,
   each with an amplitude envelope that waxes and wanes over seconds, and episodes of drowsiness
   (less alpha, more theta).
2. **Volume conduction**: independent sources at the electrodes, mixed by a Gaussian kernel of
   inter-electrode distance (:func:`mixing_matrix`), so that neighbours correlate.
3. **The electrodes**: a gain and white noise per channel, a slow drift, line noise of the
   recording's size, and sometimes a flat or noisy channel.
4. **Artefacts** (:mod:`sd_core.signals.artefacts`): blinks, horizontal eye movements, muscle
   bursts and electrode pops, each recorded in the ground truth.

The subject's traits are drawn by :func:`draw_traits`; class effects come in as a
:class:`State` (gains on the rhythms, a shift of the alpha frequency, per-region gains), set by
each data set's demo writer. Every number is cited where it is used. Where the literature gives
a range but no spread, the spread is said to be a choice; none was tuned to reach a score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from sd_core.signals.noise import spectral_noise

#: electrodes of the 10-20/10-10 system by their current names (Klem et al. 1999; Acharya et al.
#: 2016, ACNS guideline 2): the old names T3/T4/T5/T6 are T7/T8/P7/P8
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
#: the ground-truth file every demo writer puts at the root of its raw data set
TRUTH_FILE = "sd-demo-truth.json"


@dataclass(frozen=True)
class Traits:
    """One subject's physiology (amplitudes are RMS µV at the rhythm's maximum)."""

    iaf: float  # individual alpha frequency, Hz
    alpha_uv: float
    theta_uv: float
    beta_uv: float
    exponent: float  # aperiodic exponent χ of the 1/f^χ background
    background_uv: float
    blinks_per_min: float
    muscle_per_min: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def draw_traits(rng: np.random.Generator, age: float | None = None) -> Traits:
    """A subject's traits. ``age`` (years) slows the alpha rhythm and flattens the background;
    sex has no effect here (none of the sources below reports one of a size that matters).

    - **IAF** ~ N(10, 1) Hz in young adults (Klimesch 1999, Brain Res Rev 29:169, section 3:
      "about 10 Hz", with a between-subject SD of about 1 Hz), 1 Hz slower over the adult
      lifespan, 20 to 80 years (Knyazeva et al. 2018, Neurobiol Aging 69:261, abstract):
      −0.0167 Hz per year after 20.
    - **Alpha amplitude**: log-normal. Adult posterior alpha is mostly 20–60 µV peak to peak
      (Niedermeyer & Lopes da Silva 2005, Electroencephalography, 5th ed., ch. 9); taking that
      range as ±1 SD gives a median of 35 µV peak to peak (12 µV RMS of a sinusoid) and a log
      SD of ln(60/20)/2 = 0.55, a between-subject coefficient of variation of about 60 %.
      No age effect once the aperiodic background is separated (Merkin et al. 2023, Neurobiol
      Aging 121:78, abstract).
    - **Aperiodic exponent** ~ N(1.5, 0.3), clipped to 0.8–2.5, flattening with age by about
      0.007 per year (Voytek et al. 2015, J Neurosci 35:13257; Donoghue et al. 2020, Nat
      Neurosci 23:1655, Fig. 7: EEG exponents of about 1–2, older subjects flatter by about 0.3
      over five decades). The SD of 0.3 is a choice within that range.
    - **Background**: the normal awake adult EEG is 10–100 µV, mostly below 50 µV (Niedermeyer &
      Lopes da Silva 2005, ch. 9): the broadband part is log-normal around 12 µV RMS, log SD 0.3
      (a choice).
    - **Theta** (frontal midline, below 20 µV peak to peak in the awake adult) around 3 µV RMS
      and **beta** (central, below 25 µV peak to peak) around 2.5 µV RMS (Niedermeyer & Lopes da
      Silva 2005, ch. 9), log SD 0.4 each (a choice).
    - **Blinks**: 17 per minute on average at rest, with a wide spread (Bentivoglio et al.
      1997, Mov Disord 12:1028, Table 1): log-normal around 15 per minute, log SD 0.5.
    - **Muscle bursts**: about 2 per minute, log SD 0.7 (a choice; how often a subject tenses
      jaw or forehead is not a published figure).
    """
    years = 25.0 if age is None else float(age)
    iaf = rng.normal(10.0, 1.0) - 0.0167 * max(years - 20.0, 0.0)
    exponent = float(np.clip(rng.normal(1.5, 0.3) - 0.007 * (years - 25.0), 0.8, 2.5))
    return Traits(
        iaf=float(np.clip(iaf, 6.5, 13.5)),
        alpha_uv=float(12.0 * np.exp(rng.normal(0, 0.55))),
        theta_uv=float(3.0 * np.exp(rng.normal(0, 0.4))),
        beta_uv=float(2.5 * np.exp(rng.normal(0, 0.4))),
        exponent=exponent,
        background_uv=float(12.0 * np.exp(rng.normal(0, 0.3))),
        blinks_per_min=float(15.0 * np.exp(rng.normal(0, 0.5))),
        muscle_per_min=float(2.0 * np.exp(rng.normal(0, 0.7))),
    )


@dataclass(frozen=True)
class State:
    """What a class or condition changes in a recording: amplitude gains on the rhythms, a shift
    of the alpha frequency (Hz), a change of the aperiodic exponent, and per-region amplitude
    gains of the rhythms (``regions``: {"frontal"|"central"|"parietal"|"occipital"|"temporal"|
    "left"|"right": gain})."""

    alpha: float = 1.0
    theta: float = 1.0
    beta: float = 1.0
    delta: float = 0.0  # RMS µV of an added 1–4 Hz rhythm (slowing)
    gamma: float = 0.0  # RMS µV of an added 30–45 Hz band
    iaf_shift: float = 0.0
    exponent_shift: float = 0.0
    regions: dict[str, float] = field(default_factory=dict)
    blinks: float = 1.0  # factor on the blink rate
    muscle: float = 1.0  # factor on the muscle-burst rate


@lru_cache(maxsize=None)
def _montage() -> dict[str, np.ndarray]:
    import mne

    name = "standard_1005"
    for candidate in ("colin27_1005", "standard_1005"):
        if candidate in mne.channels.get_builtin_montages():
            name = candidate
            break
    pos = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    return {k.upper(): np.asarray(v, dtype=float) for k, v in pos.items()}


def positions(channels) -> np.ndarray:
    """(channels, 3) positions in metres on a standard head (MNE's 10-05 montage); old 10-20
    names are accepted."""
    pos = _montage()
    out = []
    for ch in channels:
        key = OLD_NAMES.get(ch.strip().upper(), ch.strip().upper())
        if key not in pos:
            raise ValueError(f"no standard position for electrode {ch!r}")
        out.append(pos[key])
    return np.array(out)


def mixing_matrix(xyz: np.ndarray, length_m: float = 0.03) -> np.ndarray:
    """Row-normalised volume-conduction mixing: ``exp(−d²/2λ²)`` over inter-electrode distance,
    λ = 3 cm, so that the correlation of two channels falls from about 0.8 at 3 cm to 0.5 at 5 cm
    and below 0.1 beyond 10 cm: the fall of volume-conduction coherence with distance in a
    four-sphere head model (Srinivasan et al. 2007, J Neurosci Methods 166:41, Fig. 2)."""
    d2 = ((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * length_m**2))
    return k / np.sqrt((k**2).sum(1, keepdims=True))


def topography(xyz: np.ndarray, centre: np.ndarray, width_m: float, floor: float) -> np.ndarray:
    """Gain per channel of a rhythm with its maximum at ``centre``: ``floor`` far away, 1 at it."""
    d2 = ((xyz - centre[None, :]) ** 2).sum(-1)
    return floor + (1 - floor) * np.exp(-d2 / (2 * width_m**2))


def region_gains(xyz: np.ndarray, regions: dict[str, float]) -> np.ndarray:
    """Per-channel gains from per-region gains (by position: y front/back, x left/right)."""
    g = np.ones(len(xyz))
    x, y = xyz[:, 0], xyz[:, 1]
    masks = {"frontal": y > 0.03, "central": np.abs(y) <= 0.03, "parietal": (y < -0.03) & (y > -0.08),
             "occipital": y <= -0.08, "temporal": np.abs(x) > 0.06, "left": x < -0.01, "right": x > 0.01}
    for name, gain in regions.items():
        g[masks[name]] *= gain
    return g


def envelope(rng: np.random.Generator, n_channels: int, n: int, fs: float, tau_s: float, sd: float) -> np.ndarray:
    """A log-normal amplitude envelope with correlation time ``tau_s`` and log SD ``sd``, mean 1.

    Alpha waxes and wanes in bursts of about a second, with amplitude fluctuations correlated over
    seconds (Linkenkaer-Hansen et al. 2001, J Neurosci 21:1370): τ = 1 s, log SD 0.5 (a choice).
    """
    z = spectral_noise(rng, n_channels, n, fs, lambda f: 1.0 / np.sqrt(1 + (2 * np.pi * f * tau_s) ** 2))
    return np.exp(sd * z - sd**2 / 2)


def drowsy_mask(rng: np.random.Generator, n: int, fs: float, per_min: float = 0.3) -> tuple[np.ndarray, list]:
    """Episodes of drowsiness, 5–20 s long, about 0.3 per minute (a choice): alpha drops and theta
    rises as vigilance falls (Olbrich et al. 2009, NeuroImage 45:319, stages A1→B1)."""
    seconds = n / fs
    m = np.zeros(n)
    episodes = []
    for _ in range(rng.poisson(per_min * seconds / 60)):
        start, length = rng.uniform(0, seconds), rng.uniform(5, 20)
        a, b = int(start * fs), int(min(start + length, seconds) * fs)
        ramp = np.minimum(1, np.minimum(np.arange(b - a) + 1, b - a - np.arange(b - a)) / fs)
        m[a:b] = np.maximum(m[a:b], ramp)
        episodes.append((round(start, 2), round(min(start + length, seconds), 2)))
    return m, episodes


def rhythm(rng, n_channels, n, fs, freq, rel_width=0.08):
    """Narrow-band noise (Gaussian spectrum around ``freq``), unit RMS per channel."""
    width = max(freq * rel_width, 0.3)
    return spectral_noise(rng, n_channels, n, fs, lambda f: np.exp(-0.5 * ((f - freq) / width) ** 2))


def background(rng, n_channels, n, fs, exponent):
    """Aperiodic 1/f^χ background (power ∝ f^−χ above 1 Hz, flat below), unit RMS per channel."""
    return spectral_noise(rng, n_channels, n, fs, lambda f: np.maximum(f, 1.0) ** (-exponent / 2))


def simulate(rng: np.random.Generator, traits: Traits, channels, seconds: float, fs: float,
             state: State = State(), line_hz: float | None = 50.0, artefacts: bool = True,
             eyes_closed: bool = False, reference=(), session: dict | None = None) -> tuple[np.ndarray, dict]:
    """(channels, samples) volts of one recording, and its ground truth (state, artefacts).

    ``reference``: electrodes whose mean is subtracted from every channel, as the recording's
    reference makes it (linked ears ``("A1", "A2")`` for EEGMAT, ``("CPz",)`` for ds004584); they
    are simulated like the others and left out of the result. A shared reference is much of why
    referential channels correlate. ``session``: the electrodes of the recording's session
    (:func:`sd_core.signals.artefacts.session_electrodes`, drawn for ``channels`` + ``reference``),
    shared by recordings made one after the other; by default each recording draws its own."""
    from sd_core.signals import artefacts as art

    channels = list(channels)
    extra = [r for r in reference if r.upper() not in {c.upper() for c in channels}]
    recorded, channels = len(channels), channels + extra
    xyz = positions(channels)
    c, n = len(channels), int(round(seconds * fs))
    mix = mixing_matrix(xyz)
    drowsy, episodes = drowsy_mask(rng, n, fs)
    regions = region_gains(xyz, state.regions)

    def source(x):
        return mix @ x

    iaf = traits.iaf + state.iaf_shift
    alpha_top = topography(xyz, np.array([0.0, -0.09, 0.04]), 0.06, 0.25)  # parieto-occipital maximum
    theta_top = topography(xyz, np.array([0.0, 0.05, 0.08]), 0.05, 0.35)  # frontal midline (Fz)
    beta_top = topography(xyz, np.array([0.0, 0.0, 0.095]), 0.07, 0.5)  # central
    x = traits.background_uv * source(background(rng, c, n, fs, traits.exponent + state.exponent_shift))
    a_env = envelope(rng, c, n, fs, 1.0, 0.5) * (1 - 0.6 * drowsy)
    x += traits.alpha_uv * state.alpha * alpha_top[:, None] * a_env * source(rhythm(rng, c, n, fs, iaf))
    t_env = envelope(rng, c, n, fs, 2.0, 0.4) * (1 + 0.8 * drowsy)
    x += traits.theta_uv * state.theta * theta_top[:, None] * t_env * source(rhythm(rng, c, n, fs, 6.0, 0.15))
    x += traits.beta_uv * state.beta * beta_top[:, None] * source(rhythm(rng, c, n, fs, 20.0, 0.25))
    if state.delta:
        x += state.delta * source(rhythm(rng, c, n, fs, 2.5, 0.3))
    if state.gamma:
        x += state.gamma * source(rhythm(rng, c, n, fs, 38.0, 0.12))
    x *= regions[:, None]
    truth = {"state": {k: v for k, v in state.__dict__.items()}, "drowsy": episodes}
    x, electrodes = art.electrodes(rng, x, channels, fs, line_hz, session)
    truth["electrodes"] = electrodes
    if artefacts:
        x, events = art.add_artefacts(rng, x, xyz, list(channels), fs, traits, state, eyes_closed)
        truth["artefacts"] = events
    if reference:
        upper = [c.upper() for c in channels]
        x = x - x[[upper.index(r.upper()) for r in reference]].mean(0, keepdims=True)
    return x[:recorded] * 1e-6, truth


def write_truth(root: Path, subjects: dict, recordings: dict) -> Path:
    """Write ``sd-demo-truth.json`` at the root of a demo data set: every subject's labels and
    drawn traits, every recording's state, drowsiness, electrodes and artefacts (times in seconds
    from the start of the recording). Tests and figures read it back; no reader needs it."""
    def plain(v):
        if hasattr(v, "as_dict"):
            return v.as_dict()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    path = Path(root) / TRUTH_FILE
    path.write_text(json.dumps({"model": __name__, "subjects": plain(subjects), "recordings": plain(recordings)},
                               indent=1) + "\n")
    return path


def read_truth(root: Path) -> dict:
    """The ground truth a demo writer left in ``root`` (see :func:`write_truth`)."""
    return json.loads((Path(root) / TRUTH_FILE).read_text())
