"""The parameters of a preprocessing run: what makes two runs' outputs the same."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from sd_core.errors import SdError
from sd_core.preprocess.png import LEGACY as LEGACY_PNG
from sd_core.preprocess.png import SETTINGS as PNG_SETTINGS

FORMAT_VERSION = 2
#: How images are made when ``prep`` does not say (the original project's way; see sd_core.config).
IMAGE_DEFAULTS = {"units": "V", "resample": "decimate", "hop": "original", "rounding": "truncate"}
#: Factor from volts (MNE's unit) to each allowed unit.
UNIT_FACTORS = {"V": 1.0, "uV": 1e6}


def hop_multiple_of(dataset: Any) -> int:
    """The data set's hop multiple: from a plugin object, else from the installed plugin of that
    name, else the :class:`~sd_core.plugins.dataset.DatasetPlugin` default."""
    from sd_core.plugins.dataset import DatasetPlugin

    if isinstance(dataset, str):
        try:
            from sd_core.plugins.registry import get_registry

            dataset = get_registry().datasets.get(dataset, DatasetPlugin)
        except (ImportError, SdError):  # pragma: no cover - no registry: the default
            dataset = DatasetPlugin
    return int(getattr(dataset, "hop_multiple", DatasetPlugin.hop_multiple))


def fixed_channel_count(channels: list[str]) -> int | None:
    """The number of image channels, or None when it depends on the file (``"*"``)."""
    from sd_core.signals.channels import ALL, EXCLUDE

    if ALL in channels:
        return None
    return sum(1 for c in channels if not c.startswith(EXCLUDE))


def spectrogram_plan(params: Mapping[str, Any], n_channels: int | None = None):
    """The spectrogram plan of a run's parameters (``n_channels``: the recording's, where the
    channel list depends on the file)."""
    from sd_core.spectrogram import plan_spectrogram

    C = n_channels if n_channels is not None else fixed_channel_count(params["channels"])
    return plan_spectrogram(C, params["nsamps"], params["resolution"], params["bins"], hop=params["hop"],
                            hop_multiple=params["hop_multiple"], rounding=params["rounding"])


def run_parameters(
    dataset: Any,
    prep: Mapping[str, Any],
    channels: list[str],
    options: Mapping[str, Any],
    split_file: Path | None,
) -> dict[str, Any]:
    """Everything that determines the output. A rerun with other values is refused.

    ``dataset``: the plugin (or its name: the installed plugin of that name is asked for its
    hop multiple).  ``spectrogram`` records the hop the run uses and, where the original's hop
    rule fails for these sizes, what was done instead.
    """
    pinned = None
    if split_file is not None:
        pinned = hashlib.sha256(split_file.read_bytes()).hexdigest() if split_file.is_file() else "missing"
    image = {k: prep.get(k, v) for k, v in IMAGE_DEFAULTS.items()}
    params = {
        "format": FORMAT_VERSION,
        "dataset": dataset if isinstance(dataset, str) else dataset.name,
        "fs": float(prep["fs"]),
        "nsamps": int(prep["nsamps"]),
        "overlap": float(prep["overlap"]),
        "resolution": int(prep["resolution"]),
        "bins": prep["bins"],
        **image,
        "hop_multiple": hop_multiple_of(dataset),
        "channels": list(channels),
        "splits": {k: float(v) for k, v in prep["splits"].items()},
        "seed": int(prep["seed"]),
        "split_file_sha256": pinned,
        "options": dict(sorted(options.items())),
        "png": dict(PNG_SETTINGS),  # the bytes of the images (their pixels do not depend on it)
    }
    if fixed_channel_count(params["channels"]) is None:
        params["spectrogram"] = {"hop": "per recording (the channel count depends on the file)"}
    else:
        try:
            plan = spectrogram_plan(params)
        except (SdError, ValueError, TypeError):  # impossible sizes: the caller's own check says so
            plan = None
        if plan is not None:
            params["spectrogram"] = {"hop": plan.hop, "frames": plan.n_frames, "note": plan.note}
    return params


def resumed_parameters(started: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as a run begun with ``started`` continues: with the PNG encoder settings it
    began with (PIL's defaults for a run begun before sd recorded them), so that one run's images
    are encoded alike. Their pixels do not depend on the settings."""
    params = dict(params)
    if isinstance(started, Mapping):
        params["png"] = dict(started.get("png", LEGACY_PNG))
    return params


def with_png(started: Mapping[str, Any]) -> dict[str, Any]:
    """A run's recorded parameters with the PNG settings of runs that did not record them."""
    return {**started, "png": started.get("png", LEGACY_PNG)}


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def plugin_distributions(plugin: Any) -> list[str]:
    """The installed distribution(s) providing a plugin object's top-level package: those whose
    ``sd`` entry points name it (quick), else every distribution that installs it (a scan of
    every installed file list: a third of a second with torch installed)."""
    top = type(plugin).__module__.split(".")[0]
    named = {ep.dist.name for ep in metadata.entry_points(group="sd")
             if getattr(ep, "dist", None) is not None and ep.value.split(":")[0].split(".")[0] == top}
    return sorted(named) or sorted(set(metadata.packages_distributions().get(top, [])))


def package_versions(plugin: Any) -> dict[str, str]:
    """Versions of Python, the core, the plugin's distribution and the numeric stack."""
    out = {"python": platform.python_version()}
    for dist in ["sd-core", *plugin_distributions(plugin), "numpy", "scipy", "mne", "pillow", "torch"]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
