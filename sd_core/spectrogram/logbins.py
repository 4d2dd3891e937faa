"""The fast log-bin engine: a chunk of windows -> uint8 images, float32 where that is safe.

All frames (every frame of every channel of a chunk of windows; frames are the columns) go
through the folded, factored bases of :mod:`sd_core.spectrogram.basis` in float32.  Each
channel is first demeaned in float64 and scaled by a power of two (exact, undone in the dB
step), so float32 never under- or overflows.  Bins that float32 could get visibly wrong are
then recomputed exactly (:mod:`sd_core.spectrogram.refine`), each strip's range is made exact
and the pixel step turns powers into grey levels, recomputing in float64 the bins that lie
within their error of a grey-level boundary (:mod:`sd_core.spectrogram.boundary`): pixels
depend on the window only, not on the BLAS kernel, the threads or the batch.  Element-wise
stages split their rows over the cores (:func:`sd_core.spectrogram.threads.parallel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from sd_core.spectrogram.basis import LogBasis
from sd_core.spectrogram.boundary import BinBounds, boundary_bins, exact_pixels, exact_ranges
from sd_core.spectrogram.plan import EPS, FLAT_DB, FLOOR_DB, SpectrogramPlan, to_grey
from sd_core.spectrogram.refine import (
    PRECISE_SPAN_DB,
    precise_strip,
    refine,
    windowed_norms,
)
from sd_core.spectrogram.threads import parallel

# Frames per chunk: enough for efficient float32 matrix products, few enough that a chunk's
# working set (a few arrays of R x frames float32) stays in the last-level cache.
FRAMES_PER_CHUNK = 2048
# Frequency rows per block in the element-wise stages (a block stays in the core's L2 cache).
_ROW_BLOCK = 32



class LogWork:
    """Buffers for the log-bin chunks of one call (allocated once, reused by every chunk)."""

    def __init__(self, plan: SpectrogramPlan, lb: LogBasis, max_windows: int):
        C, F, R = plan.n_channels, plan.n_frames, plan.resolution
        K = R - 1
        Lp = (F - 1) * plan.hop + plan.window_length
        N = max_windows * C * F
        self.plan, self.lb = plan, lb
        self.pad = np.empty((max_windows, C, Lp))
        self.pad32 = np.empty((max_windows, C, Lp), dtype=np.float32)
        self.rev32 = np.empty((max_windows, C, Lp), dtype=np.float32)
        self.xnorm = np.empty(N)
        self.dc_db = np.empty((max_windows, C))
        self.scale = np.empty((max_windows, C))
        self._flat = {
            "even": np.empty(N * K, dtype=np.float32),
            "odd": np.empty(N * (K - 1), dtype=np.float32),
            "yc": np.empty(N * lb.cos.first_t.shape[0], dtype=np.float32),
            "ys": np.empty(N * lb.sin.first_t.shape[0], dtype=np.float32),
            "lc": np.empty(N * lb.cos.split, dtype=np.float32),
            "ls": np.empty(N * lb.sin.split, dtype=np.float32),
            "power": np.empty(N * K, dtype=np.float32),
            "pix": np.empty(N * K, dtype=np.uint8),
        }

    def array(self, name: str, *shape: int) -> np.ndarray:
        """A C-contiguous view of the named buffer with this shape."""
        return self._flat[name][: math.prod(shape)].reshape(shape)


@dataclass
class _LogChunk:
    """Working state of one chunk of windows (log bins); frames are columns."""

    plan: SpectrogramPlan
    b: int
    dc_db: np.ndarray  # (b, C) float64
    scale: np.ndarray  # (b, C) float64, powers of two
    frames64: np.ndarray  # (b, C, F, n) float64 view of the scaled, demeaned, padded signal
    xnorm: np.ndarray  # (N,) float64, windowed norm bound of each scaled frame
    power: np.ndarray | None = None  # (R-1, N) float32, (|X| * scale)^2
    pmin: np.ndarray | None = None  # (N,) float32
    pmax: np.ndarray | None = None

    def frame_index(self, cols):
        C, F = self.plan.n_channels, self.plan.n_frames
        wi, rest = np.divmod(cols, C * F)
        ch, t = np.divmod(rest, F)
        return wi, ch, t

    def col_values(self, per_strip: np.ndarray) -> np.ndarray:
        """(b, C) -> (N,) one value per frame."""
        return np.repeat(per_strip.reshape(-1), self.plan.n_frames)


def _prepare(xb: np.ndarray, work: LogWork) -> _LogChunk:
    """DC row, demeaned scaled padded signal (float64 and float32, and reversed), norms."""
    plan = work.plan
    b, C, ns = xb.shape
    n, hop, F = plan.window_length, plan.hop, plan.n_frames
    Lp = (F - 1) * hop + n
    m = min(ns, Lp)
    pad, pad32, rev32 = work.pad[:b], work.pad32[:b], work.rev32[:b]
    dc_db, scale = work.dc_db[:b], work.scale[:b]
    xnorm = work.xnorm[: b * C * F].reshape(b, C * F)
    starts = np.arange(F) * hop

    def prep(i0, i1):
        x = xb[i0:i1]
        # DC row: |sum(x)| / sqrt(nsamps) of the un-demeaned channel
        total = x.sum(axis=-1)
        np.maximum(20.0 * np.log10(np.abs(total) / math.sqrt(ns) + EPS), FLOOR_DB, out=dc_db[i0:i1])
        # Demean (the mean of the whole window) and scale each channel by a power of two
        # (exact) that brings max |x| to [0.5, 1): float32 then neither under- nor
        # overflows; the dB step undoes the scale.  Frames t = 0 .. F-1 are
        # [t*hop, t*hop + n) of the signal followed by zeros.  (The definition pads
        # n - nsamps % hop zeros; when hop > n that is negative, and the samples after the
        # last frame are not used.)
        mean = total / ns
        amax = np.maximum(x.max(axis=-1) - mean, mean - x.min(axis=-1))
        _, expo = np.frexp(amax)
        sc = np.ldexp(1.0, -expo)  # 1 for an all-zero channel
        scale[i0:i1] = sc
        p = pad[i0:i1]
        np.subtract(x[..., :m], mean[..., None], out=p[..., :m])
        p[..., :m] *= sc[..., None]
        p[..., m:] = 0.0
        xnorm[i0:i1] = windowed_norms(p, n, starts).reshape(i1 - i0, C * F)
        np.copyto(pad32[i0:i1], p, casting="same_kind")
        np.copyto(rev32[i0:i1], pad32[i0:i1, :, ::-1])

    parallel(prep, b)
    p0, p1, p2 = pad.strides
    frames64 = as_strided(pad, shape=(b, C, F, n), strides=(p0, p1, hop * p2, p2), writeable=False)
    return _LogChunk(plan, b, dc_db, scale, frames64, xnorm.reshape(-1))


def _float32_power(ch: _LogChunk, work: LogWork) -> None:
    """Fold all frames, multiply by the factored bases in float32: power, pmin, pmax."""
    plan, lb = ch.plan, work.lb
    b, C, R, hop, F = ch.b, plan.n_channels, plan.resolution, plan.hop, plan.n_frames
    K = R - 1
    N = b * C * F
    fc, fs = lb.cos, lb.sin
    pad32, rev32 = work.pad32[:b], work.rev32[:b]
    Lp = pad32.shape[-1]
    # unit-stride views: right[t, k] = x[t*hop + c + k] and
    # left[t, k] = x[t*hop + c - k] = rev[Lp - 1 - c - t*hop + k]  (c = K)
    q0, q1, q2 = pad32.strides
    shape = (b, C, F, K)
    right = as_strided(pad32[..., K:], shape=shape, strides=(q0, q1, hop * q2, q2), writeable=False)
    left = as_strided(rev32[..., Lp - 1 - K :], shape=shape, strides=(q0, q1, -hop * q2, q2), writeable=False)
    even = work.array("even", b, C, F, K)
    odd = work.array("odd", b, C, F, K - 1)

    def fold(i0, i1):
        np.add(right[i0:i1], left[i0:i1], out=even[i0:i1])
        np.subtract(right[i0:i1, ..., 1:], left[i0:i1, ..., 1:], out=odd[i0:i1])

    parallel(fold, b)

    # float32 products, frequencies x frames (BLAS threads)
    yc = work.array("yc", fc.first_t.shape[0], N)
    ys = work.array("ys", fs.first_t.shape[0], N)
    np.matmul(fc.first_t, even.reshape(N, K).T, out=yc)
    np.matmul(fs.first_t, odd.reshape(N, K - 1).T, out=ys)
    lc = work.array("lc", fc.split, N)
    ls = work.array("ls", fs.split, N)
    for low, fb, y in ((lc, fc, yc), (ls, fs, ys)):
        for lo, hi, r0, r1, mix_t in fb.groups:
            np.matmul(mix_t, y[r0:r1], out=low[lo:hi])

    def rows(fb, low, y, a, z):
        return low[a:z] if z <= fb.split else y[fb.rank + a - fb.split : fb.rank + z - fb.split]

    power = work.array("power", K, N)
    parts = []

    def square(j0, j1):  # frequency rows j0:j1, in cache-sized blocks
        lo_p = np.full(N, np.inf, dtype=np.float32)
        hi_p = np.zeros(N, dtype=np.float32)
        tmp = np.empty((_ROW_BLOCK, N), dtype=np.float32)
        for a, z in lb.bounds:
            for a0 in range(max(a, j0), min(z, j1), _ROW_BLOCK):
                z0 = min(a0 + _ROW_BLOCK, z, j1)
                re, im = rows(fc, lc, yc, a0, z0), rows(fs, ls, ys, a0, z0)
                dst, t = power[a0:z0], tmp[: z0 - a0]
                np.multiply(re, re, out=dst)
                np.multiply(im, im, out=t)
                dst += t
                np.minimum(lo_p, dst.min(axis=0), out=lo_p)
                np.maximum(hi_p, dst.max(axis=0), out=hi_p)
        parts.append((lo_p, hi_p))

    parallel(square, K)
    ch.power = power
    ch.pmin = np.minimum.reduce([p[0] for p in parts])
    ch.pmax = np.maximum.reduce([p[1] for p in parts])



# Amplitudes (true units) above which the 1e-9 in 20 log10(|X| + 1e-9) moves a value by less
# than 1e-4 dB; if every bin of a chunk is above it, the pixel step works on the powers.
_NO_EPS_AMP = 1e5 * EPS


def _pixels(ch: _LogChunk, work: LogWork, lo_db: np.ndarray, hi_db: np.ndarray):
    """uint8 pixels (R-1, N) of the log bins, DC pixels (b, C), strip spans (b, C)."""
    power = ch.power
    K, N = power.shape
    b, C = lo_db.shape
    F = ch.plan.n_frames
    span = hi_db - lo_db
    gain = np.zeros_like(span)
    np.divide(255.0, span, out=gain, where=span > FLAT_DB)
    truncate = ch.plan.rounding == "truncate"
    # pixel = floor or round((20 log10(|X| + eps) - lo) * gain) with |X| = a / scale:
    # 20 log10(a + eps*scale) * gain + (-20 log10(scale) - lo) * gain; truncation (after
    # +0.5 to round to nearest); the -100 dB floor is pixel 0 (lo >= -100).
    scale_col = ch.col_values(ch.scale)
    plain = bool(np.all(np.sqrt(ch.pmin.astype(np.float64)) >= _NO_EPS_AMP * scale_col))
    eps_col = np.minimum(EPS * scale_col, 1e30).astype(np.float32)  # (no float32 overflow)
    # with no eps: 10 log10(a^2) * gain + ...
    g = ch.col_values((10.0 if plain else 20.0) * gain).astype(np.float32)
    off = ch.col_values((-20.0 * np.log10(ch.scale) - lo_db) * gain + (0.0 if truncate else 0.5))
    off = off.astype(np.float32)
    top = 255.0 if truncate else 255.75
    if truncate:
        # The strip's brightest bin is 255 by definition; in float32 it may land a hair
        # below.  Find it now (the powers are overwritten below) and set it afterwards.
        strip_max = ch.pmax.reshape(b * C, F)
        cols = np.arange(b * C) * F + strip_max.argmax(axis=1)
        rows_ = power[:, cols].argmax(axis=0)
        bright = (hi_db > ch.dc_db).reshape(-1) & (span.reshape(-1) > FLAT_DB)
    pix = work.array("pix", K, N)

    bounds, errcol, edges = BinBounds.of(ch, gain, off), work.lb.errcol, []

    def run(j0, j1):
        for a in range(j0, j1, _ROW_BLOCK):
            z = min(a + _ROW_BLOCK, j1)
            v = power[a:z]
            amp = np.sqrt(v)
            if not plain:
                np.add(amp, eps_col, out=v)
            np.log10(v, out=v)
            v *= g
            t_abs = np.abs(v)
            v += off
            jj, cc = boundary_bins(amp, v, t_abs, bounds, errcol[a:z], plain)
            edges.append((jj + a, cc))
            np.clip(v, 0.0, top, out=v)
            np.copyto(pix[a:z], v, casting="unsafe")

    parallel(run, K)
    jj, cc = (np.concatenate(z) for z in zip(*edges, strict=True))
    if jj.size:  # bins that could round either way: exact float64 grey levels
        pix[jj, cc] = exact_pixels(ch, work.lb, jj, cc, lo_db, span, ch.plan.rounding)
    ch.power = None  # overwritten
    if truncate:
        pix[rows_[bright], cols[bright]] = 255
    dc_pix = to_grey(ch.dc_db, lo_db, span, ch.plan.rounding)
    return pix, dc_pix, span


def log_chunk(xb: np.ndarray, work: LogWork, out: np.ndarray) -> None:
    """Log-bin images of windows xb (b, C, nsamps) float64 into out (b, R, R) uint8."""
    plan, lb = work.plan, work.lb
    ch = _prepare(xb, work)
    _float32_power(ch, work)
    refine(ch, lb)
    lo_db, hi_db = exact_ranges(ch, lb)
    pix, dc_pix, span = _pixels(ch, work, lo_db, hi_db)
    b, C = span.shape
    F = plan.n_frames
    # Strips whose range is tiny: float32 dB cannot resolve their grey levels: float64.
    for i, c in np.argwhere((span > FLAT_DB) & (span < PRECISE_SPAN_DB)):
        col = (i * C + c) * F
        pix[:, col : col + F], dc_pix[i, c] = precise_strip(
            ch.frames64[i, c], ch.dc_db[i, c], ch.scale[i, c], lb, plan.rounding)
    # image row R-1-r holds frequency row r (DC at the bottom); strips centred
    R = plan.resolution
    x0, W = plan.x_offset, C * F
    for i in range(b):
        out[i, R - 2 :: -1, x0 : x0 + W] = pix[:, i * W : (i + 1) * W]
        out[i, R - 1, x0 : x0 + W] = np.repeat(dc_pix[i], F)
