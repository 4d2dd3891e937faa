"""A small synthetic SEED-V in its native layout, read by the same code as the real one::

    Participants_info.xlsx          Subject, Sex, Age
    trials.csv                      the demo's own, shortened trial table (session,trial,emotion,start,stop)
    EEG_raw/1_1_20180804.cnt        Neuroscan CNT, 66 channels, 1000 Hz, 32-bit samples
    ...
    sd-demo-truth.json              every subject's traits and emotion effect, every session's
                                    electrodes, states, drowsiness and artefacts

Real SEED-V sessions last about 57 minutes; the demo keeps the order of emotions of each session but
shortens every clip to a few seconds, and declares those spans in ``trials.csv`` (which the plugin's
``trial_table = "auto"`` picks up; the real data set has no such file and gets DESIGN's table).

**Recording**, as in SEED-V (BCMI's SEED-V page, bcmi.sjtu.edu.cn/~seed/seed-v.html): 62 EEG
channels of the ESI NeuroScan cap and M1, M2, HEO, VEO, 1000 Hz, 50 Hz mains (Shanghai), film
watching with the eyes open (blinks at the subject's rate, horizontal eye movements). The signals
come from :mod:`sd_core.signals.eeg_model`. Electrodes without a 10-05 position are simulated at
the nearest ones MNE's montage has: CB1/CB2 (cerebellar, below O1/O2) at I1/I2, directly below
O1/O2 (the montage has no O9/O10, and PO9/PO10 lie further to the side). The eye channels are
bipolar derivations of simulated sites by the eyes: ``HEO = F10 − F9`` (the lowest lateral frontal
sites, by the outer canthi: horizontal eye movements add there with opposite signs, blinks cancel)
and ``VEO = FP1h − AF3h`` (just above the left eye and 4 cm higher: blinks fall off between them,
horizontal movements nearly cancel). No reference is subtracted (SEED-V's page names none).

The model runs at 250 Hz and each stretch is resampled to the file's 1000 Hz (polyphase); sd
decimates SEED-V to 125 Hz, and the model's rhythms and muscle lie below 100 Hz, so nothing sd reads
is lost (between 125 and 500 Hz the files hold only a noisy bad channel's noise).

**Sessions**: each session is its own recording, with its own electrodes (gains, line noise and
sometimes a bad channel, drawn once per session by :func:`sd_core.signals.artefacts.electrodes`
and kept for all of it); the subject's traits and emotion effect are the same in every session.
The session is simulated stretch by stretch (lead-in, clip, gap, clip, ...), each clip with its
emotion's :class:`~sd_core.signals.eeg_model.State`, the stretches between clips with the default
one; a stretch's own electrode gains are replaced by the session's, and a stretch in which the
model drew a bad channel is drawn again (the session's bad channel, if any, is the only one). The
artefacts (:class:`Artefacts`) are drawn over the whole session and run across the stretches;
stretches join without a cross-fade, as in the earlier demo (the trials' windows start at a join).

**Emotion effects**, in direction from Zheng, Zhu & Lu (2019, IEEE Trans Affect Comput 10:417,
"Identifying stable patterns over time for emotion recognition from EEG", section on neural
patterns, bands delta 1–3, alpha 8–13, beta 14–30, gamma 31–50 Hz): neutral clips give more
alpha at parietal and occipital sites; negative ones (sad, fear, disgust) more delta at parietal
and occipital sites and more gamma at prefrontal ones; positive ones (happy) more beta and gamma
at the lateral temporal sites. The sizes are a choice (only the directions are taken from the
paper): an amplitude gain of 1.10 in each stated band and region, each subject's
gain log-normal around it with log SD 0.1, so that about one subject in six shows the opposite.
Neutral's alpha gain goes on the subject's own alpha rhythm (State.alpha; the model's alpha has
its maximum between Pz and Oz); the other gains go on the whole band at the region's sites (the
State has no band-by-region gain). Fear and disgust differ from sad only by each subject's own
small variation of the same pattern (log SD 0.05 on each gain, a choice), so they cannot be told
apart across subjects. SEED-V's five-class accuracies are far from 1 (Liu et al. 2021, IEEE Trans
Cogn Dev Syst 14:715); on this demo, subject-held-out accuracies should be too.

**Participants**: SEED-V recruited students of Shanghai Jiao Tong University, 10 men and 10 women
(SEED-V page); 16 are released, and their split is not given, so the demo's is half and half (a
choice). SEED-V's page gives no ages: they are drawn as in its sibling SEED from the same lab
(23.3 ± 2.4 years; Zheng & Lu 2015, IEEE Trans Auton Ment Dev 7:162; SEED page), 19–28. Sex has no
effect on the signals (none cited); age acts through the model's traits.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sd_seed.tables import EMOTIONS, SEED_V_TRIALS, Trial, write_trials

FS = 1000
SIM_FS = 250  # the model's rate; FS // SIM_FS is the resampling factor
#: SEED-V's 62 EEG channels (ESI NeuroScan 62-channel cap, upper-case names) and 4 more.
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "M1", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "M2",
    "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6",
    "PO8", "CB1", "O1", "OZ", "O2", "CB2", "HEO", "VEO",
)
#: where each file channel without a 10-05 position is simulated (see the module docstring)
STAND_INS = {"CB1": "I1", "CB2": "I2"}
#: the eye channels: (site +, site −)
EOG = {"HEO": ("F10", "F9"), "VEO": ("FP1H", "AF3H")}
#: the simulated sites: the cap's electrodes (stand-ins for CB1/CB2), then the eye channels' sites
SITES = tuple(STAND_INS.get(c, c) for c in CHANNELS if c not in EOG) + tuple(s for p in EOG.values() for s in p)
#: the regions of Zheng, Zhu & Lu (2019), by site
REGIONS = {
    "prefrontal": tuple(s for s in SITES if s.startswith(("FP", "AF"))),
    "temporal": ("FT7", "FT8", "T7", "T8", "TP7", "TP8"),
    "parieto-occipital": tuple(s for s in SITES if s.startswith(("P", "O", "I"))),
}
BANDS = {"delta": (1.0, 3.0), "alpha": (8.0, 13.0), "beta": (14.0, 30.0), "gamma": (31.0, 50.0)}
#: the (band, region) pairs each emotion family raises
PATTERNS = {
    "neutral": (("alpha", "parieto-occipital"),),
    "negative": (("delta", "parieto-occipital"), ("gamma", "prefrontal")),
    "happy": (("beta", "temporal"), ("gamma", "temporal")),
}
#: median amplitude gain, its log SD between subjects, and fear's/disgust's log SD about sad's pattern
GAIN, SUBJECT_SD, NEGATIVE_SD = 1.10, 0.1, 0.05
NEGATIVE = ("sad", "fear", "disgust")
#: SEED-V: 10 of 20 recruited subjects were women (SEED-V page); ages as in SEED (Zheng & Lu 2015)
P_FEMALE, AGE, AGE_SD, AGES = 0.5, 23.3, 2.4, (19, 28)


def demo_trials(session: int = 1, lead: float = 2.0, clip: float = 8.0, gap: float = 2.0) -> list[Trial]:
    """Session ``session``'s 15 clips in SEED-V's order of emotions, each ``clip`` seconds long."""
    emos = SEED_V_TRIALS[session][0]
    return [Trial(session, i + 1, EMOTIONS[e], lead + i * (clip + gap), lead + i * (clip + gap) + clip)
            for i, e in enumerate(emos)]


def draw_effect(rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    """One subject's emotion effect: per emotion, the (band, region, amplitude gain) it changes."""
    def gains(pattern, centre):
        return [{"band": b, "region": r, "gain": round(float(c * np.exp(rng.normal(0, SUBJECT_SD))), 4)}
                for (b, r), c in zip(PATTERNS[pattern], centre)]

    effect = {"neutral": gains("neutral", [GAIN]), "happy": gains("happy", [GAIN, GAIN])}
    negative = gains("negative", [GAIN, GAIN])
    for e in NEGATIVE:
        effect[e] = [{**g, "gain": round(float(g["gain"] * np.exp(rng.normal(0, NEGATIVE_SD))), 4)} for g in negative]
    return {e: effect[e] for e in EMOTIONS}


def draw_people(rng: np.random.Generator, n_subjects: int) -> list[tuple[str, int]]:
    """(sex, age) of each subject: half women (the odd one drawn), ages of Chinese students."""
    n_female = n_subjects // 2 + int(n_subjects % 2 and rng.random() < P_FEMALE)
    sexes = rng.permutation(["Female"] * n_female + ["Male"] * (n_subjects - n_female))
    ages = np.clip(np.rint(rng.normal(AGE, AGE_SD, n_subjects)), *AGES).astype(int)
    return [(str(s), int(a)) for s, a in zip(sexes, ages)]


def band_gains(x: np.ndarray, fs: float, gains: Sequence[dict[str, Any]]) -> np.ndarray:
    """``x`` (sites × samples, µV) with each gain applied to its band at its region's sites: a
    flat gain inside the band, raised-cosine edges 1 Hz wide outside it."""
    if not gains:
        return x
    f = np.fft.rfftfreq(x.shape[1], 1.0 / fs)
    h = np.ones((x.shape[0], len(f)))
    for g in gains:
        lo, hi = BANDS[g["band"]]
        outside = np.clip(np.maximum(lo - f, f - hi), 0.0, 1.0)
        window = np.cos(0.5 * np.pi * outside) ** 2
        rows = [SITES.index(s) for s in REGIONS[g["region"]]]
        h[rows] *= 1.0 + (g["gain"] - 1.0) * window
    return np.fft.irfft(np.fft.rfft(x, axis=1) * h, n=x.shape[1], axis=1)


def emotion_state(effect: dict[str, list[dict[str, Any]]], emotion: str | None):
    """The :class:`State` of a stretch: neutral's alpha gain; the default between clips."""
    from sd_core.signals.eeg_model import State

    alpha = [g["gain"] for g in effect.get(emotion, []) if g["band"] == "alpha"] if emotion else []
    return State(alpha=float(alpha[0])) if alpha else State()


def session_electrodes(rng: np.random.Generator) -> dict[str, Any]:
    """The session's electrodes, drawn by the model's own :func:`electrodes` (gains, line noise
    level, bad channel); the line noise per site is log-normal around that level with log SD 0.5
    and a random phase, as there."""
    from sd_core.signals.artefacts import electrodes

    _, info = electrodes(rng, np.zeros((len(SITES), 2)), SITES, FS, None)
    info["line_hz"] = 50.0
    c = len(SITES)
    line = info["line_uv"] * np.exp(rng.normal(0, 0.5, size=c))
    phase = rng.uniform(0, 2 * np.pi, size=c)
    bad = info["bad_channel"]
    if bad and bad["kind"] == "noisy":
        line[SITES.index(bad["channel"])] *= 10
    return {"info": info, "gain": np.array(info["gain"]), "line": line, "phase": phase}


class Artefacts:
    """The session's blinks, eye movements, muscle bursts and pops (sites × samples µV at the
    model's rate), drawn by :func:`sd_core.signals.artefacts.add_artefacts` for the whole session
    in blocks of about a minute, so that they run on across stretches (and the model's minimum
    lengths, 3 s, never meet a short gap); times in the events are seconds of the session."""

    def __init__(self, rng: np.random.Generator, traits, n: int, block_s: float = 60.0):
        k = max(1, int(n / (block_s * SIM_FS)))
        self.edges = np.linspace(0, n, k + 1).astype(int)
        self.rng, self.traits = rng, traits
        self.events: list[dict] = []
        self.blocks: dict[int, np.ndarray] = {}

    def block(self, j: int) -> np.ndarray:
        from sd_core.signals.artefacts import add_artefacts
        from sd_core.signals.eeg_model import State, positions

        if j not in self.blocks:
            a, b = self.edges[j], self.edges[j + 1]
            x, events = add_artefacts(self.rng, np.zeros((len(SITES), b - a)), positions(SITES), list(SITES),
                                      SIM_FS, self.traits, State(), False)
            for e in events:
                e["start"], e["stop"] = round(e["start"] + a / SIM_FS, 3), round(e["stop"] + a / SIM_FS, 3)
            self.events += events
            self.blocks = {i: v for i, v in self.blocks.items() if i >= j - 1}
            self.blocks[j] = x
        return self.blocks[j]

    def take(self, a: int, b: int) -> np.ndarray:
        """Samples ``a`` … ``b`` of the session (zeros past its end)."""
        out = np.zeros((len(SITES), b - a))
        for j in range(len(self.edges) - 1):
            lo, hi = max(a, self.edges[j]), min(b, self.edges[j + 1])
            if lo < hi:
                out[:, lo - a:hi - a] = self.block(j)[:, lo - self.edges[j]:hi - self.edges[j]]
        return out


def stretch(rng: np.random.Generator, subject: dict[str, Any], emotion: str | None, n: int,
            electrodes: dict[str, Any], artefacts: np.ndarray) -> tuple[np.ndarray, dict]:
    """(sites, n) µV at 1000 Hz of one stretch (a clip of ``emotion``, or a gap if None) with the
    session's electrode gains and ``artefacts`` (at the model's rate) but no line noise yet, and
    the stretch's ground truth (state, band gains, drowsiness)."""
    from scipy.signal import resample_poly

    from sd_core.signals.eeg_model import simulate

    up = FS // SIM_FS
    m = artefacts.shape[1]
    state = emotion_state(subject["effect"], emotion)
    while True:  # a bad channel belongs to the session, not to a stretch
        x, truth = simulate(rng, subject["traits"], SITES, m / SIM_FS, SIM_FS, state, line_hz=None, artefacts=False)
        if truth["electrodes"]["bad_channel"] is None:
            break
    x = x * 1e6 * (electrodes["gain"] / np.array(truth.pop("electrodes")["gain"]))[:, None]
    gains = [g for g in subject["effect"].get(emotion, []) if g["band"] != "alpha"] if emotion else []
    x = band_gains(x, SIM_FS, gains) + artefacts
    truth["band_gains"] = gains
    return resample_poly(x, up, 1, axis=1, padtype="line")[:, :n], truth


def segment(rng: np.random.Generator, seconds: float, bands: tuple[float, float, float, float],
            alpha_peak: float) -> np.ndarray:
    """(66, samples) volts of stationary, artefact-free EEG-like noise with the given theta, alpha,
    beta and gamma amplitudes (µV): the signal of the earlier demo, kept as a plain test signal for
    the CNT sample-width checks (tests/test_data_checks.py); the demo itself no longer uses it."""
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


def to_file(x: np.ndarray) -> np.ndarray:
    """The file's 66 channels from the simulated sites (µV in, volts out)."""
    rows = []
    for ch in CHANNELS:
        if ch in EOG:
            plus, minus = EOG[ch]
            rows.append(x[SITES.index(plus)] - x[SITES.index(minus)])
        else:
            rows.append(x[SITES.index(STAND_INS.get(ch, ch))])
    return np.vstack(rows) * 1e-6


def session_chunks(rng: np.random.Generator, trials: list[Trial], subject: dict[str, Any], truth: dict,
                   tail: float = 2.0) -> Iterator[np.ndarray]:
    """The session's signal, stretch by stretch (lead-in, clip, gap, clip, ...), for streaming;
    ``truth`` receives the session's electrodes and artefacts and every stretch's state."""
    spans, t = [], 0.0
    for tr in sorted(trials, key=lambda x: x.start):
        if tr.start > t:
            spans.append((t, tr.start, None))
        spans.append((tr.start, tr.stop, tr.emotion))
        t = tr.stop
    spans.append((t, t + tail, None))
    sizes = [int(round((b - a) * FS)) for a, b, _ in spans]
    up = FS // SIM_FS
    electrodes = session_electrodes(rng)
    artefacts = Artefacts(rng, subject["traits"], -(-sum(sizes) // up) + len(sizes))
    truth.update(electrodes=electrodes["info"], stretches=[], artefacts=artefacts.events)
    bad = electrodes["info"]["bad_channel"]
    done = 0  # samples so far: the line noise runs on through the session
    for (start, stop, emotion), n in zip(spans, sizes):
        k = done // up
        x, info = stretch(rng, subject, emotion, n, electrodes, artefacts.take(k, k + -(-n // up)))
        if bad:
            i = SITES.index(bad["channel"])
            x[i] = x[i] * 0.05 if bad["kind"] == "flat" else x[i] + 30.0 * rng.standard_normal(n)
        seconds = (done + np.arange(n)) / FS
        x += electrodes["line"][:, None] * np.sin(2 * np.pi * 50.0 * seconds[None, :] + electrodes["phase"][:, None])
        done += n
        info["drowsy"] = [(round(a + start, 3), round(b + start, 3)) for a, b in info["drowsy"]]
        truth["stretches"].append({"start": start, "stop": stop, "emotion": emotion, **info})
        yield to_file(x)


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
                 clip_seconds: float = 8.0, sessions: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
    """Write the demo under ``root``: session ``session`` of every subject, or each of
    ``sessions`` (SEED-V has 1, 2, 3), 3 to 7 days apart.

    Returns {subject: {gender, age, file, trials: [Trial], files: {session: file name}, traits,
    effect}}, ``file`` and ``trials`` those of the first session; the same (trials apart) and every
    session's electrodes, states and artefacts go to ``sd-demo-truth.json``.
    """
    from sd_core.signals.eeg_model import draw_traits, write_truth
    from sd_core.spectrogram.threads import single_threaded_blas
    from sd_seed.cnt import write_cnt

    root = Path(root)
    raw_dir = root / "EEG_raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    numbers = tuple(sessions) if sessions else (session,)
    plan = {s: demo_trials(s, clip=clip_seconds) for s in numbers}
    write_trials(root / "trials.csv", [t for s in numbers for t in plan[s]])
    truth: dict[str, dict[str, Any]] = {}
    recordings: dict[str, dict] = {}
    people = draw_people(rng, n_subjects)
    for i, (sex, age) in enumerate(people):
        sid, gender = str(i + 1), sex[0]
        subject = {"traits": draw_traits(rng, age), "effect": draw_effect(rng)}
        files = {}
        date = datetime(2018, 8, 4, 9, 30) + timedelta(days=7 * i)
        for s in numbers:
            path = raw_dir / f"{sid}_{s}_{date:%Y%m%d}.cnt"
            events = [(t.start, 1) for t in plan[s]] + [(t.stop, 2) for t in plan[s]]
            recordings[path.stem] = {"subject": sid, "session": s}
            with single_threaded_blas():  # the model's small products: BLAS threads only wait on each other
                write_cnt(path, session_chunks(rng, plan[s], subject, recordings[path.stem]), CHANNELS, FS,
                          events=sorted(events), patient=f"subject {sid}", sex=gender, date=date)
            files[s] = path.name
            date += timedelta(days=int(rng.integers(3, 8)))
        truth[sid] = {"gender": gender, "age": age, "file": files[numbers[0]], "trials": plan[numbers[0]],
                      "files": files, **subject}
    write_participants_xlsx(root / "Participants_info.xlsx", [(str(i + 1), p[0], p[1]) for i, p in enumerate(people)])
    subjects = {sid: {**{k: v for k, v in t.items() if k != "trials"},
                      "trials": [asdict(tr) for tr in t["trials"]]} for sid, t in truth.items()}
    write_truth(root, subjects, recordings)
    return truth
