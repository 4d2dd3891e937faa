"""Signal steps of preprocessing: resampling and windowing."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def resample_ratio(fs_in: float, fs_out: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """(up, down) with fs_in * up / down == fs_out, for any rational ratio (256 → 125 is 125/256)."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in} and {fs_out}")
    ratio = (Fraction(str(float(fs_out))) / Fraction(str(float(fs_in)))).limit_denominator(max_denominator)
    return ratio.numerator, ratio.denominator


def resample(data: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample (channels, samples) from ``fs_in`` to ``fs_out`` along the last axis.

    Polyphase resampling with a linear-phase FIR anti-alias filter (Kaiser window) whose delay
    is compensated, i.e. zero-phase: features keep their timing. Rational ratios of any kind work.
    """
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return np.asarray(data, dtype=np.float64)
    from scipy.signal import resample_poly

    return resample_poly(np.asarray(data, dtype=np.float64), up, down, axis=-1)


def window_starts(n_samples: int, nsamps: int, overlap: float) -> np.ndarray:
    """Start samples of the windows of ``nsamps`` samples overlapping by ``overlap`` (a fraction)."""
    step = max(1, int(round(nsamps * (1.0 - overlap))))
    if n_samples < nsamps:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - nsamps + 1, step, dtype=np.int64)


def make_windows(data: np.ndarray, starts: np.ndarray, nsamps: int) -> np.ndarray:
    """(windows, channels, nsamps) view of (channels, samples) data at the given starts."""
    if len(starts) == 0:
        return np.zeros((0, data.shape[0], nsamps), dtype=data.dtype)
    idx = starts[:, None] + np.arange(nsamps)[None, :]
    return np.ascontiguousarray(np.moveaxis(data[:, idx], 1, 0))
