"""The configs of a run folder, checked key by key before anything is built from them.

A run folder comes from anyone; diffusers trusts its ``scheduler/scheduler_config.json`` and
ends in a traceback on a bad value (``num_train_timesteps = 0`` gives "array of sample points
is empty", ``"abc"`` a TypeError, ``1e12`` allocates for ever).  :func:`check_scheduler_config`
accepts what a DDPM training schedule can be and names the file and the key otherwise;
:func:`check_conditioning_config` and :func:`check_network_size` do the same for the
conditioning module's sizes and the network's sample size, which torch would otherwise meet as
a negative tensor dimension deep in sampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sd_core.errors import SdError

MAX_TIMESTEPS = 100_000  # diffusers' schedules use 1000; far above any trained one
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")
CHOICES = {"beta_schedule": BETA_SCHEDULES, "prediction_type": ("epsilon", "v_prediction", "sample"),
           "timestep_spacing": ("leading", "linspace", "trailing"),
           "variance_type": ("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned",
                             "learned_range")}
BOOLS = ("clip_sample", "thresholding", "rescale_betas_zero_snr")
UNIT = ("beta_start", "beta_end", "dynamic_thresholding_ratio")  # numbers in (0, 1]
POSITIVE = ("clip_sample_range", "sample_max_value")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _problem(key: str, v: Any) -> str | None:
    """What is wrong with one value, or None."""
    if key == "num_train_timesteps":
        if not (isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= MAX_TIMESTEPS):
            return f"must be a whole number from 2 to {MAX_TIMESTEPS}"
    elif key == "steps_offset":
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_TIMESTEPS):
            return "must be a whole number ≥ 0"
    elif key in CHOICES:
        if v not in CHOICES[key]:
            return f"must be one of {', '.join(CHOICES[key])}"
    elif key in BOOLS:
        if not isinstance(v, bool):
            return "must be true or false"
    elif key in UNIT:
        if not (_number(v) and 0 < v <= 1):
            return "must be a number in (0, 1]"
    elif key in POSITIVE:
        if not (_number(v) and v > 0):
            return "must be a positive number"
    elif key == "trained_betas":
        if v is not None:
            return "must be null (a run's schedule is given by its beta_schedule)"
    return None


def check_scheduler_config(config: Any, path: Path) -> Mapping[str, Any]:
    """The config (a JSON object) if every key sd's samplers read holds a valid value."""
    if not isinstance(config, dict):
        raise SdError(f"{path}: expected a JSON object (a diffusers scheduler config)")
    for key in ("num_train_timesteps", "beta_schedule"):
        if key not in config:
            raise SdError(f"{path}: {key} is missing")
    for key, value in config.items():
        why = None if key.startswith("_") else _problem(key, value)
        if why:
            raise SdError(f"{path}: {key} = {value!r} {why}")
    if config.get("beta_schedule") in ("linear", "scaled_linear") and \
            config.get("beta_end", 0.02) <= config.get("beta_start", 0.0001):
        raise SdError(f"{path}: beta_end must be larger than beta_start")
    return config


MAX_WIDTH = 1 << 16  # embedding sizes; far above any trained conditioning
MAX_SIZE = 8192  # image and sample sizes


def _whole(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_conditioning_config(config: Any, path: Path) -> dict[str, Any]:
    """``conditioning/config.json``: sizes in range, one class list per categorical condition."""
    if not isinstance(config, dict):
        raise SdError(f"{path}: expected a JSON object (a conditioning config written by sd)")
    limits = {"dim": (1, MAX_WIDTH), "frequencies": (1, 64), "text_dim": (0, MAX_WIDTH)}
    for key, (lo, hi) in limits.items():
        if key in config and not _whole(config[key], lo, hi):
            raise SdError(f"{path}: {key} = {config[key]!r} must be a whole number from {lo} to {hi}")
    categorical, classes = config.get("categorical", {}), config.get("classes") or {}
    if not (isinstance(categorical, dict) and all(_whole(k, 1, MAX_WIDTH) for k in categorical.values())):
        raise SdError(f"{path}: categorical must map each condition to its number of classes (≥ 1)")
    for name, k in categorical.items():
        if name in classes and not (isinstance(classes[name], list) and len(classes[name]) == k):
            raise SdError(f"{path}: classes of {name!r} must list its {k} classes")
    if not (isinstance(config.get("continuous", []), list)
            and all(isinstance(c, str) for c in config.get("continuous", []))):
        raise SdError(f"{path}: continuous must be a list of condition names")
    return config


def check_network_size(config: Any, path: Path) -> None:
    """A network config's ``sample_size`` (a whole number, or two) from 1 to MAX_SIZE."""
    if not isinstance(config, dict) or "sample_size" not in config:
        return
    size = config["sample_size"]
    sizes = size if isinstance(size, list) else [size]
    if not sizes or not all(_whole(v, 1, MAX_SIZE) for v in sizes):
        raise SdError(f"{path}: sample_size = {size!r} must be a whole number from 1 to {MAX_SIZE}")
