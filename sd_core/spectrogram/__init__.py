"""Spectrogram images: the definition, a planner that refuses impossible sizes, a fast engine.

``plan``     the definition (what an image is) and :func:`plan_spectrogram` (hop, frames, layout)
``basis``    the log-bin bases, folded and factored for float32 products
``logbins``  the fast log-bin engine (a chunk of windows -> images)
``refine``   the float32 error model and exact float64 recomputation of flagged bins
``boundary`` exact strip ranges, and float64 rounding of bins beside a grey-level boundary
``linear``   linear bins (float64 FFT)
``threads``  the thread pool, and BLAS kept to one thread with threadpoolctl

Chunks of windows are spread over the CPU cores, each thread running whole chunks with BLAS
kept to one thread meanwhile; a single chunk instead splits its element-wise stages over the
cores and lets BLAS use its own threads for the matrix products.
"""

from __future__ import annotations

import numpy as np

from sd_core.spectrogram.plan import (
    BINS,
    HOP_RULES,
    ROUNDINGS,
    SpectrogramPlan,
    SpectrogramSizeError,
    log_frequencies,
    plan_spectrogram,
)

__all__ = [
    "BINS",
    "HOP_RULES",
    "ROUNDINGS",
    "SpectrogramPlan",
    "SpectrogramSizeError",
    "log_frequencies",
    "plan_spectrogram",
    "spectrogram_image",
    "spectrogram_images",
]


def spectrogram_images(windows: np.ndarray, plan: SpectrogramPlan) -> np.ndarray:
    """Spectrogram images of a batch of windows.

    ``windows``: array (B, C, nsamps) of real numbers (any float dtype), with C and nsamps as
    in ``plan``.  Returns (B, R, R) uint8.
    """
    from sd_core.spectrogram import threads
    from sd_core.spectrogram.basis import log_basis
    from sd_core.spectrogram.linear import linear_chunk
    from sd_core.spectrogram.logbins import FRAMES_PER_CHUNK, LogWork, log_chunk

    x = np.asarray(windows)
    C, ns, R = plan.n_channels, plan.nsamps, plan.resolution
    if x.ndim != 3 or x.shape[1:] != (C, ns):
        raise ValueError(f"windows must have shape (B, {C}, {ns}) for this plan, got {x.shape}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"windows must be real numbers, got dtype {x.dtype}")
    B = x.shape[0]
    out = np.zeros((B, R, R), dtype=np.uint8)
    if B == 0:
        return out
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError("windows contain NaN or infinite values")
    per_chunk = max(1, FRAMES_PER_CHUNK // (C * plan.n_frames))
    chunks = [(b0, min(B, b0 + per_chunk)) for b0 in range(0, B, per_chunk)]
    lb = log_basis(R) if plan.bins == "log" else None

    def run(c0: int, c1: int) -> None:
        work = LogWork(plan, lb, chunks[c0][1] - chunks[c0][0]) if lb is not None else None
        for b0, b1 in chunks[c0:c1]:
            xb = np.ascontiguousarray(x[b0:b1], dtype=np.float64)  # (windows may be a strided view)
            if work is not None:
                log_chunk(xb, work, out[b0:b1])
            else:
                linear_chunk(xb, plan, out[b0:b1])

    if len(chunks) > 1 and threads.n_threads() > 1 and not threads.is_inline():
        # Each thread takes whole chunks, matrix products included, with BLAS kept to one
        # thread: every core stays busy with no hand-offs between stages.
        with threads.single_threaded_blas() as single:
            if single:
                threads.parallel(threads.run_inline(run), len(chunks))
                return out
    # One chunk at a time: matrix products with BLAS threads, other stages split by rows.
    run(0, len(chunks))
    return out


def spectrogram_image(
    window: np.ndarray,
    resolution: int = 256,
    bins: str = "log",
    *,
    hop: str = "original",
    hop_multiple: int = 4,
    rounding: str = "truncate",
) -> np.ndarray:
    """Spectrogram image (R, R) uint8 of one window (C, nsamps); options as in
    :func:`plan_spectrogram`."""
    w = np.asarray(window)
    if w.ndim != 2:
        raise ValueError(f"window must have shape (C, nsamps), got {w.shape}")
    plan = plan_spectrogram(w.shape[0], w.shape[1], resolution, bins, hop=hop,
                            hop_multiple=hop_multiple, rounding=rounding)
    return spectrogram_images(w[None], plan)[0]
