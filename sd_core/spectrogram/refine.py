"""Exact refinement: the float32 error model, and float64 recomputation of the bins it flags.

float32 is not accurate enough for every input: a bin far below the energy of its frame
(sinusoids, steps, integrated random walks, zero padding under the window's tail) can be off
by several dB.  Every bin therefore has an error bound (``basis._GAMMA`` times a windowed norm of its
frame, :func:`windowed_norms`; the largest error measured on hard signals is a fifth of it),
and the bins whose bound could move them by half a grey level in their strip are recomputed
exactly in float64 (:func:`refine`); strips spanning less than 2 dB are computed in float64
throughout (:func:`precise_strip`).  The result matches the float64 definition to within one
grey level (the tests check this).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from sd_core.spectrogram.basis import LogBasis, fold
from sd_core.spectrogram.plan import EPS, FLOOR_DB


def db_of_power(p, scale):
    """dB of scaled powers (|X| * scale)^2, float64, floored."""
    db = 20.0 * np.log10(np.sqrt(p) / scale + EPS)
    return np.maximum(db, FLOOR_DB, out=db)


def strip_ranges(ch) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) dB of every strip from the column extremes and the DC row, float64, (b, C)."""
    b, C = ch.dc_db.shape
    F = ch.plan.n_frames
    scale_col = ch.col_values(ch.scale)
    lo = db_of_power(ch.pmin.astype(np.float64), scale_col).reshape(b, C, F).min(-1)
    hi = db_of_power(ch.pmax.astype(np.float64), scale_col).reshape(b, C, F).max(-1)
    return np.minimum(lo, ch.dc_db), np.maximum(hi, ch.dc_db)


# A bin is recomputed in float64 when its error bound could move it by this many grey levels.
_GREY_TOL = 0.5
# Strips whose whole range is below this many dB are computed in float64 throughout.
PRECISE_SPAN_DB = 2.0
_DB_PER_REL = 20.0 / math.log(10.0)  # d(dB) = _DB_PER_REL * d|X| / |X|


@lru_cache(maxsize=8)
def _window_blocks(n: int, step: int, n_blocks: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Block edges over a frame (multiples of ``step``) and a bound of w^2 in each block.

    A block [a, b) of a frame starting at s is widened to whole ``step``-sample cells of the
    signal, i.e. to at most [a - step + 1, b + step - 1) of the frame; its weight is the
    largest w^2 there, times 8/3 (so the norm is the plain 2-norm for stationary signals).
    """
    edges = np.unique(np.linspace(0, n, min(n_blocks, n) + 1).round().astype(np.int64))
    w2 = np.hanning(n) ** 2
    w2max = np.array(
        [w2[max(0, a - step + 1) : min(n, b + step - 1)].max() for a, b in itertools.pairwise(edges)]
    )
    return edges, w2max * (8.0 / 3.0)


def windowed_norms(pad: np.ndarray, n: int, starts: np.ndarray) -> np.ndarray:
    """Upper bounds of ``sqrt(8/3 * sum_m w[m]^2 x[s+m]^2)`` for every frame start s
    (shape (..., F)).

    ``w`` is the Hann window.  The signal energy is summed in cells of ``step`` samples and
    accumulated (running sums over cells); each frame is cut into blocks, a block's energy is
    taken over the cells it touches and weighted by the largest w^2 there.
    """
    L = pad.shape[-1]
    step = max(1, min(16, n // 32))
    cells = -(-L // step)
    sq = np.zeros(pad.shape[:-1] + (cells * step,))
    np.multiply(pad, pad, out=sq[..., :L])
    run = np.zeros(pad.shape[:-1] + (cells + 1,))
    cell_sums = (sq.reshape(-1, step) @ np.ones(step)).reshape(pad.shape[:-1] + (cells,))
    np.cumsum(cell_sums, axis=-1, out=run[..., 1:])
    edges, w2max = _window_blocks(n, step)
    pts = starts[:, None] + edges[None, :]  # (F, blocks + 1)
    first = pts[:, :-1] // step  # first cell of each block
    last = -(-pts[:, 1:] // step)  # one past its last cell
    flat = run.reshape(-1, cells + 1)
    energy = np.take(flat, last.ravel(), axis=1) - np.take(flat, first.ravel(), axis=1)
    np.maximum(energy, 0.0, out=energy)
    F, blocks = first.shape
    return np.sqrt(energy.reshape(pad.shape[:-1] + (F, blocks)) @ w2max)


def refine(ch, lb: LogBasis) -> tuple[np.ndarray, np.ndarray]:
    """Recompute in float64 the bins whose float32 value could be visibly off.

    The error bound of bin j of frame t is ``xnorm[t] * errcol[j]`` (amplitude, scaled
    units); a bin is suspect if that could move it by more than ``_GREY_TOL`` grey levels of
    its strip, unless it is certainly below the -100 dB floor.  Suspect bins are recomputed
    from the float64 signal with the exact float64 basis (whole frames when a frame has many
    suspects).  A strip's range can only move through recomputed bins; the screen is repeated
    while a range shrinks.  Updates ``ch.power/pmin/pmax``; returns the strip ranges
    (lo, hi) in dB, float64, shape (b, C).
    """
    power, pmin, pmax, xnorm = ch.power, ch.pmin, ch.pmax, ch.xnorm
    K, N = power.shape
    scale_col = ch.col_values(ch.scale)
    errcol = lb.errcol
    err_max = xnorm * errcol.max()
    eps_s = EPS * scale_col
    floor_s = 10.0 ** (FLOOR_DB / 20.0) * scale_col
    done = np.zeros((K, N), dtype=bool) if K else None
    span_old = None
    while True:
        lo_db, hi_db = strip_ranges(ch)
        span = ch.col_values(hi_db - lo_db)
        if K == 0 or (span_old is not None and np.all(span >= 0.9 * span_old)):
            break
        span_old = span
        rel = (_GREY_TOL / 255.0 / _DB_PER_REL) * span  # relative amplitude error allowed
        cols = np.nonzero(err_max > rel * (np.sqrt(pmin.astype(np.float64)) + eps_s))[0]
        if cols.size == 0:
            break
        jj, cc = _suspects(power[:, cols], errcol, xnorm[cols], rel[cols], eps_s[cols], floor_s[cols])
        keep = ~done[jj, cols[cc]]
        jj, cc = jj[keep], cc[keep]
        if jj.size == 0:
            break
        _exact_bins(ch, lb, jj, cols[cc])
        done[jj, cols[cc]] = True
        touched = np.unique(cols[cc])
        pmin[touched] = power[:, touched].min(axis=0)
        pmax[touched] = power[:, touched].max(axis=0)
    return lo_db, hi_db


def _suspects(pw: np.ndarray, errcol: np.ndarray, xnorm: np.ndarray, rel: np.ndarray, ep: np.ndarray,
              floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the bins of ``pw`` (float32 powers, K x n) whose float32 error could
    show: ``err > rel (amp + ep)`` and ``amp + err + ep > floor``, with ``amp = sqrt(pw)`` and
    ``err = errcol[row] xnorm[col]``, in float64.

    Most bins are far from both conditions, so a float32 screen first keeps those with
    ``sqrt(pw) <= errcol xnorm / rel`` (thresholds rounded up: it never drops a suspect), and the
    exact float64 test runs on those only: the same bins, in the same order, as the test on all."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = (xnorm / rel) * (1.0 + 1e-6)  # rel = 0 (a flat strip): inf, every bin screened in
        up = np.multiply.outer((errcol * (1.0 + 1e-6)).astype(np.float32), g.astype(np.float32))
    amp32 = np.sqrt(pw)
    jc, cc = np.nonzero(amp32 <= up)
    amp = np.sqrt(pw[jc, cc].astype(np.float64))
    err = errcol[jc] * xnorm[cc]
    e = ep[cc]
    ok = (err > rel[cc] * (amp + e)) & (amp + err + e > floor[cc])
    return jc[ok], cc[ok]


def frame_powers(e64: np.ndarray, o64: np.ndarray, lb: LogBasis) -> np.ndarray:
    """Exact float64 powers (K, m) of whole folded frames (m, K) and (m, K-1)."""
    re, im = e64 @ lb.cos.full64, o64 @ lb.sin.full64
    return (re * re + im * im).T


def _exact_bins(ch, lb: LogBasis, jj: np.ndarray, cols: np.ndarray) -> None:
    """power[jj, cols] = exact float64 powers (folded in float64, exact basis)."""
    K = ch.power.shape[0]
    ucols, inv, counts = np.unique(cols, return_inverse=True, return_counts=True)
    many = counts > K // 16  # frames with many suspects: whole frame with a matrix product
    if many.any():
        sel = ucols[many]
        ch.power[:, sel] = frame_powers(*fold(ch.frames64[ch.frame_index(sel)], K), lb)
    few = ~many[inv]
    if few.any():
        ch.power[jj[few], cols[few]] = exact_powers(ch, lb, jj[few], cols[few])


# Bins recomputed per block in exact_powers (frames and basis rows stay in the core's cache).
_EXACT_BLOCK = 512


def exact_powers(ch, lb: LogBasis, jj: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Exact float64 powers of bins (jj, cols), taken in order of their frame, a block at a
    time, each frame folded once per block."""
    K = lb.cos_t.shape[0]
    order = np.argsort(cols, kind="stable")
    p = np.empty(jj.size)
    for i0 in range(0, jj.size, _EXACT_BLOCK):
        s = order[i0 : i0 + _EXACT_BLOCK]
        ucols, inv = np.unique(cols[s], return_inverse=True)
        e64, o64 = fold(ch.frames64[ch.frame_index(ucols)], K)
        re = np.einsum("ik,ik->i", e64[inv], lb.cos_t[jj[s]])
        im = np.einsum("ik,ik->i", o64[inv], lb.sin_t[jj[s]])
        p[s] = re * re + im * im
    return p


def precise_strip(frames64: np.ndarray, dc_db: float, scale: float, lb: LogBasis, rounding: str):
    """Grey levels of one strip computed in float64 throughout: (R-1, F) bins, DC pixel.

    For strips whose range is so small (< ``PRECISE_SPAN_DB``) that float32 dB cannot resolve
    their grey levels.  ``frames64``: (F, n) scaled, demeaned frames.
    """
    from sd_core.spectrogram.plan import to_grey

    K = lb.cos_t.shape[0]
    e64, o64 = fold(frames64, K)
    re, im = e64 @ lb.cos.full64, o64 @ lb.sin.full64
    F = frames64.shape[0]
    db = np.empty((F, K + 1))
    db[:, 0] = dc_db
    db[:, 1:] = db_of_power(re * re + im * im, scale)
    lo, hi = db.min(), db.max()
    u8 = to_grey(db, lo, hi - lo, rounding)
    return u8[:, 1:].T, u8[0, 0]
