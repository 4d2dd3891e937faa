"""The original project's chain, written from DESIGN.md's description only (not from sd's code).

Per recording: read in volts (MNE), the data set's channels, the whole recording; decimate by
the integer factor q = fs_file / fs with ``scipy.signal.decimate(x, q, axis=1,
zero_phase=True)``, the whole recording (SEED-V: the whole session, then each trial cut at
``int(start * fs)`` ... ``int(end * fs)``); windows every ``nsamps - floor(nsamps * overlap)``
samples while they fit; per window the hop rule, per channel the log-bin STFT (complex128, a
direct DFT), dB, -100 dB floor, min-max to 0..255 truncated, rows flipped, strips side by side
and centred on a black canvas.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal


def decimate_whole(x: np.ndarray, fs_file: float, fs: float) -> np.ndarray:
    q = fs_file / fs
    assert q == int(q), f"the original refuses non-integer factors ({fs_file} / {fs})"
    q = int(q)
    return x if q == 1 else scipy.signal.decimate(x, q, axis=1, zero_phase=True)


def window_starts(n: int, nsamps: int, overlap: float) -> list[int]:
    step = nsamps - math.floor(nsamps * overlap)
    starts, s = [], 0
    while s + nsamps <= n:
        starts.append(s)
        s += step
    return starts


def hop_for(C: int, nsamps: int, R: int, m: int) -> int:
    """Smallest multiple of m with nsamps / hop <= floor(R / C); where that gives C * F > R or
    nsamps mod hop > 2R - 1 (the original fails there), the next multiple that works."""
    hop = m
    while nsamps / hop > R // C:
        hop += m
    while C * (1 + nsamps // hop) > R or nsamps % hop > 2 * R - 1:
        hop += m
    return hop


def log_strip_db(x: np.ndarray, R: int, hop: int) -> np.ndarray:
    """One channel -> (R, F) dB, row 0 = DC (before the flip)."""
    n = 2 * R - 1
    ns = len(x)
    w = np.hanning(n)
    f = 10.0 ** np.linspace(np.log10(0.001), np.log10(0.5), R - 1)
    dft = np.exp(-2j * np.pi * np.outer(f, np.arange(n)))  # complex128
    d = x - x.mean()
    padded = np.concatenate([d, np.zeros(n - ns % hop)])
    starts = range(0, len(padded) - n + 1, hop)
    frames = np.stack([padded[s : s + n] for s in starts])  # (F, n)
    mags = np.empty((R, len(frames)))
    mags[1:] = np.abs(dft @ (w * frames).T) * 2.0 / math.sqrt(n)
    mags[0] = abs(x.sum()) / math.sqrt(ns)
    return np.maximum(20.0 * np.log10(mags + 1e-9), -100.0)


def to_u8(db: np.ndarray) -> np.ndarray:
    lo, hi = db.min(), db.max()
    if hi == lo:
        return np.zeros(db.shape, dtype=np.uint8)
    return ((db - lo) / (hi - lo) * 255.0).astype(np.uint8)  # truncation


def image(window: np.ndarray, R: int, m: int) -> np.ndarray:
    C, ns = window.shape
    hop = hop_for(C, ns, R, m)
    F = 1 + ns // hop
    img = np.zeros((R, R), dtype=np.uint8)
    x0 = (R - C * F) // 2
    for c in range(C):
        img[:, x0 + c * F : x0 + (c + 1) * F] = to_u8(log_strip_db(window[c], R, hop))[::-1]
    return img


def recording_images(x: np.ndarray, fs_file: float, fs: float, nsamps: int, overlap: float, R: int,
                     m: int, span: tuple[float, float] | None = None) -> list[np.ndarray]:
    """Images of every window of a recording (volts, channels x samples at fs_file); ``span``
    (seconds) cuts one trial out of the decimated session."""
    y = decimate_whole(np.asarray(x, dtype=np.float64), fs_file, fs)
    if span is not None:
        y = y[:, int(span[0] * fs) : int(span[1] * fs)]
    return [image(y[:, s : s + nsamps], R, m) for s in window_starts(y.shape[1], nsamps, overlap)]


def pick(ch_names: list[str], wanted: list[str]) -> list[int]:
    """Indices of the wanted names; a name listed twice that MNE made unique (``T8-P8-0``,
    ``T8-P8-1``) is found under MNE's names, in order."""
    seen: dict[str, int] = {}
    out = []
    for w in wanted:
        k = seen.get(w, 0)
        seen[w] = k + 1
        out.append(ch_names.index(w) if w in ch_names else ch_names.index(f"{w}-{k}"))
    return out
