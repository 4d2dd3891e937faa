"""Linear bins: the one-sided STFT of ``librosa.stft`` (centred frames), in float64."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from sd_core.spectrogram.plan import EPS, FLOOR_DB, SpectrogramPlan, to_grey
from sd_core.spectrogram.threads import parallel


@lru_cache(maxsize=8)
def _periodic_hann(R: int) -> np.ndarray:
    k = np.arange(R, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / R)


def linear_chunk(xb: np.ndarray, plan: SpectrogramPlan, out: np.ndarray) -> None:
    """Linear-bin images of windows xb (b, C, nsamps) float64 into out (b, R, R) uint8."""
    b, C, ns = xb.shape
    R, n, hop, F = plan.resolution, plan.window_length, plan.hop, plan.n_frames
    half = n // 2  # centre padding, = R - 1
    lpad = (n - R) // 2  # where librosa puts the R-sample window inside n_fft
    # Frame t is padded[t*hop : t*hop + n]; its windowed part is [t*hop + lpad, + R).
    # (When hop divides nsamps, the last frame reaches one sample past librosa's padding:
    # the signal is zero there too.)
    length = max(half + ns + half, (F - 1) * hop + n)
    pad = np.zeros((b, C, length), dtype=np.float64)
    pad[..., half : half + ns] = xb
    s0, s1, s2 = pad.strides
    seg = as_strided(pad[..., lpad:], shape=(b, C, F, R), strides=(s0, s1, hop * s2, s2), writeable=False)
    win = _periodic_hann(R)
    pix = np.empty((b, C, F, R), dtype=np.uint8)

    def work(i0, i1):
        # the window's offset inside the n-point frame only changes the phase: pad at the end
        spec = np.fft.rfft(seg[i0:i1] * win, n=n, axis=-1)  # (., C, F, n // 2 + 1 = R)
        db = 20.0 * np.log10(np.abs(spec) + EPS)
        np.maximum(db, FLOOR_DB, out=db)
        lo = db.min(axis=(2, 3), keepdims=True)
        span = db.max(axis=(2, 3), keepdims=True) - lo
        pix[i0:i1] = to_grey(db, lo, span, plan.rounding)

    parallel(work, b)
    x0 = plan.x_offset
    # image row R-1-r holds frequency row r; column x0 + c*F + t holds frame t of channel c
    out[:, ::-1, x0 : x0 + C * F] = pix.transpose(0, 3, 1, 2).reshape(b, R, C * F)

