"""Opening one ds004584 recording (EEGLAB ``.set`` with or without ``.fdt``) with the checks MNE
does not make: a truncated ``.fdt``, a sidecar whose ``SamplingFrequency`` disagrees with the file,
and channels that ``*_channels.tsv`` marks bad.

Imported lazily (it imports MNE) from :meth:`ParkinsonsDataset.read_raw`.
"""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np

from sd_core.errors import DatasetError
from sd_parkinsons.bids import bad_channels, sidecar_sampling_frequency

#: bytes per sample in an EEGLAB ``.fdt`` (float32)
FDT_BYTES = 4
#: relative disagreement between the sidecar's and the file's rate that is tolerated
RATE_TOLERANCE = 1e-3


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_eeglab(path: Path) -> mne.io.BaseRaw:
    """``mne.io.read_raw_eeglab`` without preloading; missing, unreadable or truncated files raise
    :class:`DatasetError` with one line that names the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path.name}: file not found ({path})")
    try:
        raw = mne.io.read_raw_eeglab(path, preload=False, verbose="error")
    except FileNotFoundError:
        raise DatasetError(f"{path.name}: its data file {path.with_suffix('.fdt').name} is missing "
                           f"(EEGLAB keeps the samples beside the .set); download it again") from None
    except Exception as exc:  # scipy/pymatreader errors of all kinds for a damaged .set
        raise DatasetError(f"{path.name}: not a readable EEGLAB .set file "
                           f"({type(exc).__name__}: {_first_line(exc)})") from None
    data_file = Path(raw.filenames[0])
    if data_file.suffix.lower() == ".fdt":
        # MNE reads a short .fdt without complaint (np.fromfile just returns fewer samples) and
        # fails later with an obscure reshape error, or not at all: check the size up front.
        expected = raw.info["nchan"] * raw.n_times * FDT_BYTES
        size = os.path.getsize(data_file)
        if size < expected:
            have = size / (raw.info["nchan"] * FDT_BYTES) / raw.info["sfreq"]
            raise DatasetError(
                f"{data_file.name}: truncated EEGLAB data file ({size} of {expected} bytes: "
                f"{have:.1f} of {raw.n_times / raw.info['sfreq']:.1f} s); download it again")
    return raw


def check_sampling_frequency(raw: mne.io.BaseRaw, path: Path, sidecar: Path | None) -> None:
    """The sidecar's ``SamplingFrequency`` must agree with the rate stored in the ``.set``.

    When they disagree, one of them is wrong and sd cannot tell which: with the wrong rate every
    frequency of the image (the alpha peak that separates the groups) would move, and window
    times would be off. So the recording is refused, naming both values.
    """
    if sidecar is None:
        return
    stated = sidecar_sampling_frequency(sidecar)
    fs = float(raw.info["sfreq"])
    if stated is not None and abs(stated - fs) > RATE_TOLERANCE * fs:
        raise DatasetError(
            f"{path.name} is sampled at {fs:g} Hz but {sidecar.name} says SamplingFrequency "
            f"{stated:g}; fix the one that is wrong (or set check_sidecar = false to trust the .set)")


def apply_bad_channels(raw: mne.io.BaseRaw, path: Path, tsv: Path | None, policy: str) -> mne.io.BaseRaw:
    """Mark the channels ``tsv`` lists as bad and treat them as ``policy`` says."""
    if tsv is None:
        return raw
    try:
        listed = bad_channels(tsv)
    except OSError as exc:
        raise DatasetError(f"{tsv.name}: unreadable ({exc})") from None
    bads = [c for c in listed if c in raw.ch_names]
    if not bads or policy == "keep":
        return raw
    # marked bad: the core refuses to read a bad channel into an image ("skip")
    raw.info["bads"] = bads
    if policy == "interpolate":
        # Spherical splines need positions: the file's own where it has them, else the standard
        # 10-05 positions of the channel names. This loads the recording (a few minutes of 63
        # channels: tens of MB).
        raw.load_data(verbose="error")
        have_pos = all(np.isfinite(ch["loc"][:3]).all() and np.any(ch["loc"][:3])
                       for ch in raw.info["chs"] if ch["kind"] == mne.io.constants.FIFF.FIFFV_EEG_CH)
        if not have_pos:
            raw.set_montage("standard_1005", match_case=False, on_missing="ignore", verbose="error")
        missing = [c for c in bads if not np.isfinite(raw.info["chs"][raw.ch_names.index(c)]["loc"][:3]).all()
                   or not np.any(raw.info["chs"][raw.ch_names.index(c)]["loc"][:3])]
        if missing:
            raise DatasetError(f"{path.name}: cannot interpolate bad channel(s) {', '.join(missing)} "
                               "(no position known for them)")
        raw.interpolate_bads(reset_bads=True, verbose="error")
    return raw


def open_recording(path: Path, sidecar: Path | None, channels_tsv: Path | None,
                   check_sidecar: bool = True, bad_policy: str = "skip") -> mne.io.BaseRaw:
    raw = read_eeglab(path)
    if check_sidecar:
        check_sampling_frequency(raw, path, sidecar)
    return apply_bad_channels(raw, path, channels_tsv, bad_policy)
