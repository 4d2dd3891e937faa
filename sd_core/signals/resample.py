"""Resampling a recording to the processing rate: the original's decimation, or polyphase."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

#: ``"decimate"``: the original's ``scipy.signal.decimate`` (8th-order Chebyshev I IIR,
#: zero-phase) for integer ratios, polyphase otherwise; ``"poly"``: polyphase FIR always.
RESAMPLERS = ("decimate", "poly")


def resample_ratio(fs_in: float, fs_out: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """(up, down) with fs_in * up / down == fs_out, for any rational ratio (256 → 125 is 125/256)."""
    if fs_in <= 0 or fs_out <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in} and {fs_out}")
    ratio = (Fraction(str(float(fs_out))) / Fraction(str(float(fs_in)))).limit_denominator(max_denominator)
    return ratio.numerator, ratio.denominator


def decimation_factor(fs_in: float, fs_out: float) -> int | None:
    """The integer ``q`` with ``fs_in == q * fs_out`` (1 for equal rates), or None."""
    if fs_in <= 0 or fs_out <= 0 or not (math.isfinite(fs_in) and math.isfinite(fs_out)):
        raise ValueError(f"sampling rates must be positive and finite, got {fs_in} and {fs_out}")
    q = round(fs_in / fs_out)
    return q if q >= 1 and abs(fs_in - q * fs_out) <= 1e-9 * fs_in else None


def decimate(data: np.ndarray, q: int, overwrite: bool = False) -> np.ndarray:
    """The original project's resampler: ``scipy.signal.decimate(x, q, axis=-1, zero_phase=True)``
    (its default 8th-order Chebyshev type I IIR filter, applied forwards and backwards).

    (channels, samples) data is filtered one channel at a time, the channels spread over the
    engine's threads (scipy's filters release the GIL): the same numbers as one call on the
    whole array, with temporary copies of one channel per thread instead of the whole recording.
    ``overwrite``: a float64 ``data`` may hold the result (each channel's decimated samples at the
    start of its row; a view of it is returned), so that the recording is in memory only once.
    """
    x = np.asarray(data, dtype=np.float64)
    if q == 1:
        return x
    one = _channel_decimator(q)
    if x.ndim != 2:
        return np.apply_along_axis(one, -1, x) if x.ndim > 1 else one(x)
    from sd_core.spectrogram import threads

    n_out = -(-x.shape[1] // q)
    mine = overwrite and x is data and x.flags.writeable and x.flags.c_contiguous
    out = x[:, :n_out] if mine else np.empty((x.shape[0], n_out))

    def run(a: int, b: int) -> None:
        for c in range(a, b):
            out[c] = one(x[c])

    threads.parallel(run, x.shape[0])
    return out


@lru_cache(maxsize=16)
def _channel_decimator(q: int):
    """``scipy.signal.decimate(·, q, zero_phase=True)`` of one channel: scipy's own steps with the
    filter designed once (:mod:`sd_core.signals.decimation_filter`: cached per machine, checked bit for
    bit against scipy's call), else scipy's call."""
    from sd_core.signals.decimation_filter import (
        compiled_sosfilt,
        decimation_filter,
        filtfilt_decimate,
    )

    f = decimation_filter(q)
    sosfilt = compiled_sosfilt() if f.exact else None

    def reference(x: np.ndarray) -> np.ndarray:
        from scipy.signal import decimate as scipy_decimate

        return scipy_decimate(x, q, zero_phase=True)

    if sosfilt is None:
        return reference

    def fast(x: np.ndarray) -> np.ndarray:
        if x.shape[-1] <= f.edge:
            return reference(x)  # too short: scipy's own error
        return filtfilt_decimate(f, x, sosfilt)

    return fast


def resample(data: np.ndarray, fs_in: float, fs_out: float, method: str = "poly") -> np.ndarray:
    """Resample (channels, samples) from ``fs_in`` to ``fs_out`` along the last axis.

    ``method="poly"``: polyphase resampling with a linear-phase FIR anti-alias filter (Kaiser
    window) whose delay is compensated, i.e. zero-phase: features keep their timing. Rational
    ratios of any kind work.  ``method="decimate"``: :func:`decimate` where ``fs_in / fs_out``
    is an integer, polyphase otherwise (see :func:`resampler_used`).
    """
    if method not in RESAMPLERS:
        raise ValueError(f"method must be one of {RESAMPLERS}, got {method!r}")
    if method == "decimate":
        q = decimation_factor(fs_in, fs_out)
        if q is not None:
            return decimate(data, q)
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return np.asarray(data, dtype=np.float64)
    from scipy.signal import resample_poly

    return resample_poly(np.asarray(data, dtype=np.float64), up, down, axis=-1)


def resampler_used(fs_in: float, fs_out: float, method: str) -> str:
    """What :func:`resample` does for these rates: "none", "decimate" or "poly"."""
    if method == "decimate":
        q = decimation_factor(fs_in, fs_out)
        if q is not None:
            return "none" if q == 1 else "decimate"
    up, down = resample_ratio(fs_in, fs_out)
    return "none" if up == down else "poly"
