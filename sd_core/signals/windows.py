"""Cutting a recording into the windows that become images."""

from __future__ import annotations

import math

import numpy as np


def window_starts(n_samples: int, nsamps: int, overlap: float) -> np.ndarray:
    """Start samples of the windows of ``nsamps`` samples overlapping by ``overlap`` (a fraction):
    0, step, 2 step, ... while the window fits, ``step = nsamps - floor(nsamps * overlap)``
    (the original's)."""
    step = max(1, nsamps - math.floor(nsamps * overlap))
    if n_samples < nsamps:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - nsamps + 1, step, dtype=np.int64)


def make_windows(data: np.ndarray, starts: np.ndarray, nsamps: int) -> np.ndarray:
    """(windows, channels, nsamps) windows of (channels, samples) data at the given starts: a
    read-only view of ``data`` where the starts are evenly spaced (no copy: a chunk of an hour of
    CHB-MIT would take tens of MB), a copy otherwise."""
    from numpy.lib.stride_tricks import as_strided

    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return np.zeros((0, data.shape[0], nsamps), dtype=data.dtype)
    if starts.min() < 0 or starts.max() + nsamps > data.shape[1]:
        raise ValueError(f"windows of {nsamps} samples at {starts.min()}…{starts.max()} do not fit "
                         f"{data.shape[1]} samples")
    step = int(starts[1] - starts[0]) if len(starts) > 1 else 0
    if step > 0 and np.all(np.diff(starts) == step):
        first = data[:, starts[0] :]
        return as_strided(first, shape=(len(starts), data.shape[0], nsamps),
                          strides=(step * data.strides[1], data.strides[0], data.strides[1]), writeable=False)
    idx = starts[:, None] + np.arange(nsamps)[None, :]
    return np.ascontiguousarray(np.moveaxis(data[:, idx], 1, 0))
