"""The log-bin bases, folded and factored for fast float32 products.

The Hann window is symmetric about the frame centre ``c = R - 1``, so each frame is folded
into its even part ``x[c+k] + x[c-k]`` and odd part ``x[c+k] - x[c-k]`` (``k = 0 .. R-2``;
``w = 0`` at ``k = R-1``): up to the phase ``exp(-2 pi i f c)``, which drops out of the
magnitude, the real part of the DFT is the even part times a windowed cosine basis and the
imaginary part the odd part times a windowed sine basis.  That halves the work of the plain
``frames (n) @ [cos | sin] (n x 2(R-1))`` product.  The low-frequency columns of each basis
are numerically of low rank (the log-spaced frequencies are much denser there than the
frequency resolution of the window), so they are applied as a truncated-SVD product
``(frames @ U) @ (S V^T)``, truncated far below float32 resolution; that removes another ~45%
of the work at R = 512.  The bases are cached per resolution.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sd_core.spectrogram.plan import log_frequencies


@dataclass(frozen=True)
class _Factored:
    """A basis (K lags x M frequencies) split for float32 products with folded frames.

    ``frames (K, N) -> first_t @ frames`` gives ``rank`` low-rank coordinates followed by the
    direct products for columns ``split..M-1``; group ``(lo, hi, r0, r1, mix_t)`` turns
    coordinates ``r0:r1`` into columns ``lo:hi`` (``mix_t`` is (hi - lo) x (r1 - r0)).
    """

    first_t: np.ndarray  # (rank + M - split, K) float32, C-contiguous
    groups: tuple
    rank: int
    split: int
    full64: np.ndarray  # (K, M) float64, the exact basis (refinement)
    colnorm: np.ndarray  # (M,) float64, column 2-norms of the exact basis
    trunc: np.ndarray  # (M,) float64, ||exact column - factored column||_2


def _svd_rank(block: np.ndarray, tol: float):
    u, s, vt = np.linalg.svd(block, full_matrices=False)
    r = int(np.count_nonzero(s > tol))
    return r, u[:, :r], s[:r, None] * vt[:r]


def _factor(basis: np.ndarray, rel_tol: float = 2e-8, chunk: int = 16) -> _Factored:
    """Group contiguous low-frequency columns into truncated-SVD products, greedily.

    From the lowest frequency up, chunks of columns join the current group while the merged
    group is cheaper (multiply-adds per frame: ``rank * (K + columns)``) than two groups; the
    first chunk that is of full rank on its own ends the low band, and every column from
    there on is applied directly.  Singular values below ``rel_tol`` times the largest column
    norm are dropped (far below float32 resolution).
    """
    K, M = basis.shape
    tol = rel_tol * float(np.linalg.norm(basis, axis=0).max()) if M and K else 0.0
    groups = []  # (lo, hi, r, U, S V^T)
    if K >= 48 and M >= 2 * chunk:
        lo = hi = 0
        cur = None
        while hi < M:
            nxt = min(M, hi + chunk)
            r, u, svt = _svd_rank(basis[:, lo:nxt], tol)
            width = nxt - lo
            if r * (K + width) >= K * width:
                break  # (nearly) full rank: direct from here on
            if cur is not None:
                r2, u2, svt2 = _svd_rank(basis[:, hi:nxt], tol)
                if cur[2] * (K + hi - lo) + r2 * (K + nxt - hi) < r * (K + width):
                    groups.append(cur)
                    cur = None
                    if r2 * (K + nxt - hi) >= K * (nxt - hi):
                        break
                    lo = hi
                    r, u, svt = r2, u2, svt2
            cur = (lo, nxt, r, u, svt)
            hi = nxt
        if cur is not None:
            groups.append(cur)
    split = groups[-1][1] if groups else 0
    rank = sum(g[2] for g in groups)
    first = np.empty((K, rank + M - split), dtype=np.float64)
    packed = []
    approx = basis.copy()
    r0 = 0
    for lo, hi, r, u, svt in groups:
        first[:, r0 : r0 + r] = u
        packed.append((lo, hi, r0, r0 + r, np.ascontiguousarray(svt.T, dtype=np.float32)))
        approx[:, lo:hi] = u @ svt
        r0 += r
    first[:, rank:] = basis[:, split:]
    return _Factored(
        first_t=np.ascontiguousarray(first.T, dtype=np.float32),
        groups=tuple(packed),
        rank=rank,
        split=split,
        full64=basis,
        colnorm=np.linalg.norm(basis, axis=0),
        trunc=np.linalg.norm(basis - approx, axis=0),
    )


# Float32 error model.  For a frame x (scaled, demeaned, n samples), the float32 amplitude of
# log bin j (folded in float32, factored float32 products) differs from the exact one by at
# most about ``xw * errcol[j]``, where ``xw`` bounds sqrt(8/3 * sum_m w[m]^2 x[m]^2) (see
# _windowed_norms: the rounding errors scale with the windowed samples, so a frame whose
# energy sits under the window's tails has small errors) and
# ``errcol = _GAMMA * (||cos column|| + ||sin column||) + truncation errors``.
# Measured on white noise, EEG (volts and microvolts), sinusoids, steps, impulses, signals at
# the frame edge and (doubly, triply) integrated random walks for R = 16 .. 512, the error
# never exceeded 6 * eps32 * xw * (||cos column|| + ||sin column||); the model uses 32.
_GAMMA = 32.0 * float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class LogBasis:
    cos: _Factored
    sin: _Factored
    errcol: np.ndarray  # (R-1,) float64, amplitude error bound per unit frame norm
    bounds: tuple  # intervals (a, b) of frequency rows with one source each for Re and Im
    cos_t: np.ndarray  # (R-1, K) float64, exact cosine basis, one row per frequency
    sin_t: np.ndarray  # (R-1, K-1) float64, exact sine basis, one row per frequency


@lru_cache(maxsize=8)
def log_basis(resolution: int) -> LogBasis:
    """Folded, windowed, scaled cosine and sine bases for the R-1 log frequencies."""
    R = resolution
    n = 2 * R - 1
    c = R - 1
    K = R - 1  # lags k = 0 .. R-2 (the window is 0 at k = R-1)
    w = np.hanning(n)
    f = log_frequencies(R)
    k = np.arange(K, dtype=np.float64)
    phase = 2.0 * np.pi * np.outer(k, f)
    wk = w[c : c + K] * (2.0 / math.sqrt(n))
    cos_b = wk[:, None] * np.cos(phase)
    cos_b[0] *= 0.5  # the even part holds 2 x[c] at k = 0
    sin_b = (wk[:, None] * np.sin(phase))[1:]
    from sd_core.spectrogram.threads import single_threaded_blas

    with single_threaded_blas():  # small SVDs: BLAS threads only wait on each other
        fc, fs = _factor(cos_b), _factor(sin_b)
    errcol = _GAMMA * (fc.colnorm + fs.colnorm) + fc.trunc + fs.trunc
    cuts = sorted({0, fc.split, fs.split, K})
    return LogBasis(
        fc,
        fs,
        errcol,
        tuple(itertools.pairwise(cuts)),
        np.ascontiguousarray(cos_b.T),
        np.ascontiguousarray(sin_b.T),
    )



def fold(frames: np.ndarray, K: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Frames (..., n) -> even part (..., K) and odd part (..., K-1) about the centre R-1."""
    c = K  # centre index R - 1
    right = frames[..., c : c + K]
    left = frames[..., 1 : c + 1][..., ::-1]
    even = np.add(right, left, dtype=dtype)
    odd = np.subtract(right[..., 1:], left[..., 1:], dtype=dtype)
    return even, odd
