"""The parameters of a preprocessing run: what makes two runs' outputs the same."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

FORMAT_VERSION = 1
#: Recordings are scaled to microvolts before the spectrogram: the definition's 1e-9 epsilon and
#: −100 dB floor are sized for µV-scale values (in volts, EEG magnitudes sit near the floor).
UNITS = "uV"


def run_parameters(
    dataset: str,
    prep: Mapping[str, Any],
    channels: list[str],
    options: Mapping[str, Any],
    split_file: Path | None,
) -> dict[str, Any]:
    """Everything that determines the output. A rerun with other values is refused."""
    pinned = None
    if split_file is not None:
        pinned = hashlib.sha256(split_file.read_bytes()).hexdigest() if split_file.is_file() else "missing"
    return {
        "format": FORMAT_VERSION,
        "dataset": dataset,
        "fs": float(prep["fs"]),
        "nsamps": int(prep["nsamps"]),
        "overlap": float(prep["overlap"]),
        "resolution": int(prep["resolution"]),
        "bins": prep["bins"],
        "units": UNITS,
        "channels": list(channels),
        "splits": {k: float(v) for k, v in prep["splits"].items()},
        "seed": int(prep["seed"]),
        "split_file_sha256": pinned,
        "options": dict(sorted(options.items())),
    }


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def plugin_distributions(plugin: Any) -> list[str]:
    """The installed distribution(s) providing a plugin object's top-level package."""
    top = type(plugin).__module__.split(".")[0]
    return sorted(set(metadata.packages_distributions().get(top, [])))


def package_versions(plugin: Any) -> dict[str, str]:
    """Versions of Python, the core, the plugin's distribution and the numeric stack."""
    out = {"python": platform.python_version()}
    for dist in ["sd-core", *plugin_distributions(plugin), "numpy", "scipy", "mne", "pillow", "torch"]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
