"""Pixels that depend only on their window: exact strip ranges, exact rounding at grey-level edges.

After :func:`sd_core.spectrogram.refine.refine` no float32 bin is off by more than half a grey
level, but a bin whose exact value lies within its error of a grey-level boundary still rounds
either way.  Which way depends on the BLAS kernel (OpenBLAS picks one per processor and per matrix
shape), the thread count and the batch the window sits in: the same window gave a pixel one grey
level apart on an AMD EPYC with ``OPENBLAS_CORETYPE=Haswell``.  Two steps make every pixel a
function of its window alone:

1. :func:`exact_ranges`: every frame that could hold a strip's darkest or brightest bin is
   recomputed in float64, so each strip's dB range (which scales all its pixels) is exact;
2. :func:`boundary_bins` (called by the pixel step on each block of rows): a bin whose float32
   grey value lies within its error bound (float32 power bound, widened for the logarithm, plus
   the float32 pixel arithmetic) of an integer is recomputed in float64 and rounded there
   (:func:`exact_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_core.spectrogram.basis import LogBasis
from sd_core.spectrogram.plan import EPS, FLOOR_DB, to_grey
from sd_core.spectrogram.refine import _DB_PER_REL, db_of_power, exact_powers, strip_ranges

# Relative error allowed for the float32 pixel arithmetic (log10, one multiply, one add, with
# float32 constants): 2**-20, about 8 float32 ulps of the largest term.
_ARITH_REL = 2.0**-20


def exact_ranges(ch, lb: LogBasis) -> tuple[np.ndarray, np.ndarray]:
    """Recompute in float64 every bin that could be its strip's darkest or brightest, then the
    strips' ranges.

    With ``err`` a frame's largest bound (:mod:`refine`), the strip's darkest amplitude is at
    most ``low = min(sqrt(pmin) + err)`` over its frames, so only frames with
    ``sqrt(pmin) - err <= low`` can hold it, and in them only bins with ``amp - e <= low``
    (``e``: the bin's bound); the same for the brightest.  Every other bin is certainly farther
    from the extreme than the exact extreme, so the range is exact.  Below the -100 dB floor
    every value is the floor: no bin is needed.
    """
    b, C = ch.dc_db.shape
    F = ch.plan.n_frames
    scale_col = ch.col_values(ch.scale)
    err = ch.xnorm * lb.errcol.max()
    amin, amax = np.sqrt(ch.pmin.astype(np.float64)), np.sqrt(ch.pmax.astype(np.float64))
    floor = 10.0 ** (FLOOR_DB / 20.0) * scale_col - EPS * scale_col
    low = np.repeat((amin + err).reshape(b * C, F).min(axis=1), F)
    high = np.repeat((amax - err).reshape(b * C, F).max(axis=1), F)
    cols = np.nonzero(((amin - err <= low) & (low > floor)) | (amax + err >= high))[0]
    if cols.size:
        amp = np.sqrt(ch.power[:, cols].astype(np.float64))
        e = np.multiply.outer(lb.errcol, ch.xnorm[cols])
        dark = (amp - e <= low[cols]) & (low[cols] > floor[cols])
        jj, cc = np.nonzero(dark | (amp + e >= high[cols]))
        ch.power[jj, cols[cc]] = exact_powers(ch, lb, jj, cols[cc])
        ch.pmin[cols] = ch.power[:, cols].min(axis=0)
        ch.pmax[cols] = ch.power[:, cols].max(axis=0)
    return strip_ranges(ch)


def boundary_bins(amp: np.ndarray, v: np.ndarray, t_abs: np.ndarray, cols: BinBounds,
                  errcol: np.ndarray, plain: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a block of bins whose grey value could round either way.

    ``amp``: float32 amplitudes (rows x N, scaled units); ``v``: their float32 grey values before
    clipping and truncation (boundaries at the integers); ``t_abs``: ``|log10(.) * g|``, the
    largest term of the pixel arithmetic; ``errcol``: the rows' error bounds per unit norm;
    ``plain``: the pixel step left out the 1e-9 (it counts as an error of the amplitude).  An
    amplitude ``a`` (plus eps) off by at most ``e`` is off by at most ``8.69 e / (a - e)`` dB; a
    bin certainly below the -100 dB floor is pixel 0 either way.
    """
    e = np.multiply.outer(errcol.astype(np.float32), cols.xnorm)  # amplitude error bound
    if plain:
        e += cols.eps
    a = amp + cols.eps
    den = a - e
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bound = (e * cols.grey_per_rel) / den
    bound[~(den > 0)] = np.inf
    bound *= 1.0 + 1e-5  # (the float32 rounding of the bound itself)
    bound += _ARITH_REL * (t_abs + cols.abs_off)
    flag = np.abs(v - np.rint(v)) <= bound
    flag &= a + e >= cols.floor
    return np.nonzero(flag)


@dataclass
class BinBounds:
    """Per column (frame) float32 factors of :func:`boundary_bins`."""

    xnorm: np.ndarray  # the frame's windowed norm bound
    grey_per_rel: np.ndarray  # grey levels per unit relative amplitude error: 8.69 * 255 / span
    eps: np.ndarray  # 1e-9 in scaled units
    floor: np.ndarray  # the -100 dB floor in scaled units
    abs_off: np.ndarray  # |offset| of the pixel arithmetic

    @classmethod
    def of(cls, ch, gain: np.ndarray, off: np.ndarray) -> BinBounds:
        scale_col = ch.col_values(ch.scale)
        parts = (ch.xnorm, ch.col_values(_DB_PER_REL * gain), np.minimum(EPS * scale_col, 1e30),
                 np.minimum(10.0 ** (FLOOR_DB / 20.0) * scale_col, 1e30), np.abs(off))
        return cls(*(np.asarray(z, dtype=np.float32) for z in parts))


def exact_pixels(ch, lb: LogBasis, jj: np.ndarray, cols: np.ndarray, lo_db: np.ndarray, span: np.ndarray,
                 rounding: str) -> np.ndarray:
    """Grey levels of bins (jj, cols), from exact float64 powers and the exact strip ranges."""
    p = exact_powers(ch, lb, jj, cols)
    scale, lo, sp = (ch.col_values(z)[cols] for z in (ch.scale, lo_db, span))
    return to_grey(db_of_power(p, scale), lo, sp, rounding)
