"""A small synthetic ds004584 in its native BIDS layout, read by the same code as the real one::

    dataset_description.json  participants.tsv  README
    sub-001/eeg/sub-001_task-Rest_eeg.set (+ .fdt)  _eeg.json  _channels.tsv
    ...

The ``.set`` files are written by MNE's EEGLAB exporter (``mne.export.export_raw(fmt="eeglab")``,
which needs ``eeglabio``); that exporter keeps the samples inside the ``.set``, so for all but the
last subject the samples are then moved to a ``.fdt`` beside it, the way EEGLAB saves large
recordings (and the way most of ds004584 is stored). The last subject keeps them embedded, so
both storage forms are exercised.

Learnable effects (DESIGN): Parkinson's subjects have more theta (about 5.5 Hz) and a slower
alpha peak (8.3 Hz instead of 10 Hz); women have an alpha peak 0.4 Hz faster and a little more
beta than men; alpha slows a little with age.
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
#: (group, gender, age) of the demo subjects: two of each group × gender, then two more.
PEOPLE = (
    ("PD", "F", 66), ("PD", "M", 71), ("Control", "F", 63), ("Control", "M", 69),
    ("PD", "F", 74), ("PD", "M", 62), ("Control", "F", 71), ("Control", "M", 60),
)
#: A channel marked bad in one subject's ``_channels.tsv`` (not one of the image's channels).
DEMO_BAD = {"sub-003": ("FT9",)}


def _posterior_gain(name: str) -> float:
    n = name.upper()
    if n.startswith(("O", "PO")) or n in ("OZ",):
        return 1.6
    if n.startswith("P"):
        return 1.3
    if n.startswith(("FP", "AF", "F")):
        return 0.6
    return 0.9


def subject_signal(rng: np.random.Generator, seconds: float, health: str, gender: str, age: int) -> np.ndarray:
    """(63, samples) volts of one resting-state recording."""
    from sd_core.signals.synthetic import Rhythm, eeg, narrowband

    n = int(round(seconds * FS))
    c = len(CHANNELS)
    x = eeg(rng, c, n, FS, background_uv=16.0, rhythms=(), line_hz=60.0, line_uv=1.5) * 1e6
    pd = health == "PD"
    peak = (8.3 if pd else 10.0) + (0.4 if gender == "F" else 0.0) - 0.02 * (age - 65)
    alpha = narrowband(rng, 1, n, FS, Rhythm(peak, 14.0, 0.05))[0]
    gains = np.array([_posterior_gain(ch) for ch in CHANNELS])[:, None]
    x += gains * (alpha[None, :] + narrowband(rng, c, n, FS, Rhythm(peak, 4.0, 0.05)))
    theta_uv = 11.0 if pd else 3.0
    x += narrowband(rng, c, n, FS, Rhythm(5.5, theta_uv, 0.12))
    x += narrowband(rng, c, n, FS, Rhythm(20.0, 4.0 if gender == "F" else 2.5, 0.25))
    return x * 1e-6


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
    """Write the demo data set under ``root``; returns {sub-XXX: {health, gender, age, group}}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth: dict[str, dict[str, Any]] = {}
    for i in range(n_subjects):
        group, gender, age = PEOPLE[i % len(PEOPLE)]
        truth[f"sub-{i + 1:03d}"] = {"group": group, "health": "PD" if group == "PD" else "H",
                                     "gender": gender, "age": age + i // len(PEOPLE)}
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
    for i, (sid, t) in enumerate(truth.items()):
        eeg_dir = root / sid / "eeg"
        stem = f"{sid}_task-{TASK}"
        data = subject_signal(rng, seconds, t["health"], t["gender"], t["age"])
        write_recording(eeg_dir / f"{stem}_eeg.set", data, fdt=i < n_subjects - 1)
        write_sidecars(eeg_dir, stem, n, DEMO_BAD.get(sid, ()))
    return truth
