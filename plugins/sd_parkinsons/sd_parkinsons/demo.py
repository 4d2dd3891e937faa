"""A small synthetic ds004584 in its native BIDS layout, read by the same code as the real one::

    dataset_description.json  participants.tsv  README  sd-demo-truth.json
    sub-001/eeg/sub-001_task-Rest_eeg.set (+ .fdt)  _eeg.json  _channels.tsv
    ...

The ``.set`` files are written by MNE's EEGLAB exporter (``mne.export.export_raw(fmt="eeglab")``,
which needs ``eeglabio``); that exporter keeps the samples inside the ``.set``, so for all but the
last subject the samples are then moved to a ``.fdt`` beside it, the way EEGLAB saves large
recordings (and the way most of ds004584 is stored). The last subject keeps them embedded, so
both storage forms are exercised. ``sd-demo-truth.json`` holds every subject's labels, drawn
traits and Parkinson's effect and every recording's state, electrodes and artefacts.

The signals come from :mod:`sd_core.signals.eeg_model` (subjects differ in alpha frequency and
amplitude, background, electrodes; recordings have drowsiness, blinks, eye movements, muscle,
pops, line noise, sometimes a bad channel). Recorded as in ds004584 (OpenNeuro ds004584, its
``_eeg.json`` and ``_channels.tsv``): 63 channels of a 64-channel actiCAP with CPz as the online
reference (CPz is simulated and subtracted, ``reference=("CPz",)``, and is not in the files),
500 Hz, 60 Hz mains (a US recording), eyes open at rest (blinks and eye movements present).

Participants. Class balance as in ds004584, 100 PD : 49 controls: ``round(n · 100/149)`` of ``n``
subjects have PD, at least two of each group when ``n ≥ 4``, in an order shuffled by the seed.
Ages of an older cohort: N(67, 9) years clipped to 45–85 (a choice near the data set's range).
Sex: Parkinson's disease is about 1.5 times as common in men as in women (Moisan et al. 2016,
J Neurol Neurosurg Psychiatry 87:952, meta-analysis: male-to-female ratio about 1.5), so
P(male) = 0.6 among PD subjects and 0.5 among controls (drawn again for a group of two or
more that came out all one sex, so that a small demo has both sexes in each group). Age slows the alpha rhythm and
flattens the background through :func:`~sd_core.signals.eeg_model.draw_traits`; sex has no
effect on the signals.

The Parkinson's effect is EEG slowing: a slower alpha peak, more theta and less beta, found in
non-demented PD from the first years of the disease (Soikkeli et al. 1991, Electroencephalogr
Clin Neurophysiol 79:159: slower background rhythm in PD; Stoffers et al. 2007, Brain 130:1847:
more theta and low-alpha power, less beta, in de novo and established PD; Geraedts et al. 2018,
Neurology 91:871, systematic review: slowing is the most consistent quantitative EEG finding in
PD). It is drawn per PD subject, with a spread so that some subjects show none or the opposite:
an alpha-frequency shift ~ N(−0.6, 0.6) Hz, a theta power ratio log-normal with median 1.3 (log
SD 0.35) and a beta power ratio log-normal with median 0.9 (log SD 0.3); the rhythms' amplitudes
are multiplied by the square roots of the power ratios. The directions are those of the papers
above; the sizes and spreads are choices within them (none of the papers gives a per-subject
distribution), none tuned to reach a score. Controls are recorded in the default state.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

FS = 500.0
#: 63 EEG channels of a 64-channel actiCAP with CPz as the online reference (ds004584's layout).
CHANNELS = (
    "Fp1", "Fz", "F3", "F7", "FT9", "FC5", "FC1", "C3", "T7", "TP9", "CP5", "CP1", "Pz", "P3", "P7",
    "O1", "Oz", "O2", "P4", "P8", "TP10", "CP6", "CP2", "Cz", "C4", "T8", "FT10", "FC6", "FC2", "F4",
    "F8", "Fp2", "AF7", "AF3", "AFz", "F1", "F5", "FT7", "FC3", "C1", "C5", "TP7", "CP3", "P1", "P5",
    "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2", "FCz", "CP4", "TP8", "C6", "C2", "FC4", "FT8", "F6",
    "AF8", "AF4", "F2",
)
TASK = "Rest"
#: the online reference, simulated and subtracted; US mains
REFERENCE, LINE_HZ = ("CPz",), 60.0
#: A channel marked bad in one subject's ``_channels.tsv`` (not one of the image's channels).
DEMO_BAD = {"sub-003": ("FT9",)}
#: ds004584: 100 PD and 49 controls
PD_SHARE = 100 / 149
#: ages: N(mean, SD) clipped to (low, high), years (a choice, see the module docstring)
AGE = (67.0, 9.0, 45, 85)
#: P(male) by group (Moisan et al. 2016: PD about 1.5× as common in men)
P_MALE = {"PD": 0.6, "Control": 0.5}
#: the Parkinson's effect: IAF shift N(mean, SD) Hz; power ratios log-normal (median, log SD)
IAF_SHIFT = (-0.6, 0.6)
THETA_RATIO = (1.3, 0.35)
BETA_RATIO = (0.9, 0.3)


def draw_groups(rng: np.random.Generator, n_subjects: int) -> list[str]:
    """The groups of ``n_subjects`` subjects in ds004584's balance, shuffled by ``rng``."""
    n_pd = int(round(n_subjects * PD_SHARE))
    if n_subjects >= 4:
        n_pd = min(max(n_pd, 2), n_subjects - 2)
    groups = np.array(["PD"] * n_pd + ["Control"] * (n_subjects - n_pd))
    return [str(g) for g in groups[rng.permutation(n_subjects)]]


def draw_effect(rng: np.random.Generator, group: str) -> dict[str, float]:
    """One subject's Parkinson's effect (none for a control): IAF shift (Hz) and power ratios."""
    if group != "PD":
        return {"iaf_shift": 0.0, "theta_power_ratio": 1.0, "beta_power_ratio": 1.0}
    return {"iaf_shift": round(float(rng.normal(*IAF_SHIFT)), 4),
            "theta_power_ratio": round(float(THETA_RATIO[0] * np.exp(rng.normal(0, THETA_RATIO[1]))), 4),
            "beta_power_ratio": round(float(BETA_RATIO[0] * np.exp(rng.normal(0, BETA_RATIO[1]))), 4)}


def draw_genders(rng: np.random.Generator, groups: list[str]) -> list[str]:
    """Each subject's sex, male with probability ``P_MALE[group]``, drawn again for a group of
    two or more that came out all one sex (so that a small demo has both sexes in each group)."""
    genders = [""] * len(groups)
    for group in sorted(set(groups)):
        where = [i for i, g in enumerate(groups) if g == group]
        while True:
            drawn = ["M" if u < P_MALE[group] else "F" for u in rng.random(len(where))]
            if len(where) < 2 or len(set(drawn)) == 2:
                break
        for i, g in zip(where, drawn):
            genders[i] = g
    return genders


def draw_people(rng: np.random.Generator, n_subjects: int) -> dict[str, dict[str, Any]]:
    """{sub-XXX: {group, health, gender, age, traits, effect}} of the demo subjects."""
    from sd_core.signals.eeg_model import draw_traits

    groups = draw_groups(rng, n_subjects)
    genders = draw_genders(rng, groups)
    people = {}
    for i, (group, gender) in enumerate(zip(groups, genders)):
        age = int(round(float(np.clip(rng.normal(AGE[0], AGE[1]), AGE[2], AGE[3]))))
        people[f"sub-{i + 1:03d}"] = {"group": group, "health": "PD" if group == "PD" else "H",
                                      "gender": gender, "age": age, "traits": draw_traits(rng, age),
                                      "effect": draw_effect(rng, group)}
    return people


def subject_signal(rng: np.random.Generator, seconds: float, subject: dict[str, Any],
                   bads: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """(63, samples) volts of one eyes-open resting recording referenced to CPz, and its truth.
    Channels in ``bads`` are flat (electrode off: 5 % of the signal), as ``_channels.tsv`` says."""
    from sd_core.signals.eeg_model import State, simulate

    effect = subject["effect"]
    state = State(theta=float(np.sqrt(effect["theta_power_ratio"])),
                  beta=float(np.sqrt(effect["beta_power_ratio"])), iaf_shift=float(effect["iaf_shift"]))
    x, truth = simulate(rng, subject["traits"], CHANNELS, seconds, FS, state, line_hz=LINE_HZ,
                        eyes_closed=False, reference=REFERENCE)
    for ch in bads:
        x[CHANNELS.index(ch)] *= 0.05
    truth["marked_bad"] = list(bads)
    return x, truth


def split_fdt(set_path: Path) -> Path:
    """Move the samples of an EEGLAB ``.set`` written with embedded data into a ``.fdt`` beside it.

    EEGLAB's ``.fdt`` holds float32 samples channel-fastest (the MATLAB column order of the
    channels × samples ``EEG.data``); ``EEG.data`` then holds the ``.fdt`` file name.
    """
    from scipy.io import loadmat, savemat

    mat = {k: v for k, v in loadmat(set_path, appendmat=False).items() if not k.startswith("__")}
    data = np.asarray(mat["data"], dtype="<f4")  # channels × samples, µV
    fdt = set_path.with_suffix(".fdt")
    np.asfortranarray(data).ravel(order="F").tofile(fdt)
    mat["data"] = fdt.name
    mat["datfile"] = fdt.name
    savemat(set_path, mat, appendmat=False, oned_as="row")
    return fdt


def write_recording(path: Path, data: np.ndarray, fdt: bool = True) -> None:
    import mne

    info = mne.create_info(list(CHANNELS), FS, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage("standard_1005", match_case=False, verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="eeglab", overwrite=True, verbose="error")
    if fdt:
        split_fdt(path)


def write_sidecars(eeg_dir: Path, stem: str, n_samples: int, bads: tuple[str, ...] = ()) -> None:
    sidecar = {
        "TaskName": TASK, "SamplingFrequency": FS, "PowerLineFrequency": 60, "EEGReference": "CPz",
        "EEGChannelCount": len(CHANNELS), "EOGChannelCount": 0, "ECGChannelCount": 0,
        "EMGChannelCount": 0, "RecordingType": "continuous", "RecordingDuration": n_samples / FS,
        "SoftwareFilters": "n/a", "EEGPlacementScheme": "10-10",
        "Manufacturer": "synthetic (sd demo)",
    }
    (eeg_dir / f"{stem}_eeg.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    with open(eeg_dir / f"{stem}_channels.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["name", "type", "units", "status", "status_description"])
        for ch in CHANNELS:
            bad = ch in bads
            w.writerow([ch, "EEG", "uV", "bad" if bad else "good", "flat (demo)" if bad else "n/a"])


def write_ds004584(root: Path, seed: int = 0, n_subjects: int = 8, seconds: float = 60.0) -> dict[str, dict[str, Any]]:
    """Write the demo data set under ``root``.

    Returns {sub-XXX: {group, health, gender, age, traits, effect}}; the same, with each
    recording's state, electrodes and artefacts, goes to ``sd-demo-truth.json``.
    """
    from sd_core.signals.eeg_model import write_truth

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = draw_people(rng, n_subjects)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "sd demo: resting-state EEG in Parkinson's disease (synthetic, ds004584 layout)",
        "BIDSVersion": "1.8.0", "DatasetType": "raw", "License": "CC0",
        "Authors": ["sd demo writer"],
    }, indent=2) + "\n")
    (root / "README").write_text("Synthetic recordings in the layout of OpenNeuro ds004584, written by "
                                 "`sd demo`. Not real data.\n")
    with open(root / "participants.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["participant_id", "GROUP", "AGE", "GENDER"])
        for sid, t in truth.items():
            w.writerow([sid, t["group"], t["age"], t["gender"]])
    n = int(round(seconds * FS))
    recordings: dict[str, dict] = {}
    for i, (sid, t) in enumerate(truth.items()):
        eeg_dir = root / sid / "eeg"
        stem = f"{sid}_task-{TASK}"
        data, recordings[stem] = subject_signal(rng, seconds, t, DEMO_BAD.get(sid, ()))
        write_recording(eeg_dir / f"{stem}_eeg.set", data, fdt=i < n_subjects - 1)
        write_sidecars(eeg_dir, stem, n, DEMO_BAD.get(sid, ()))
    write_truth(root, truth, recordings)
    return truth
