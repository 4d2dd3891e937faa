"""Spectrogram images: the definition, a planner that refuses impossible sizes, a fast engine.

Definition (users have models trained on images made exactly this way)
---------------------------------------------------------------------
A window of ``nsamps`` samples of ``C`` channels becomes an ``R x R`` uint8 image:

* ``n = 2R - 1`` samples per STFT frame, frames every ``hop`` samples, where ``hop`` is the
  smallest hop >= 1 with ``C * (1 + nsamps // hop) <= R``; ``F = 1 + nsamps // hop`` frames.
* ``bins="log"`` (default): each channel is demeaned and zero padded by
  ``n - nsamps % hop`` samples; frames start at 0, hop, 2 hop, ...  Row 0 is DC and holds, in
  every frame, ``|sum(x)| / sqrt(nsamps)`` of the un-demeaned channel.  Rows 1..R-1 are the
  frequencies ``10**u`` cycles/sample, ``u = linspace(log10(0.001), log10(0.5), R - 1)``, each
  ``|sum_m w[m] x[m] exp(-2 pi i f m)| * 2 / sqrt(n)`` with ``w = numpy.hanning(n)``.
* ``bins="linear"``: the magnitude of the one-sided STFT that ``librosa.stft`` gives with
  ``n_fft = n``, ``win_length = R`` (periodic Hann of R samples centred in ``n``),
  ``center=True`` with zero padding, ``hop`` as above: R rows, 0 .. 0.5 cycles/sample.
  (Frame ``t`` is centred on sample ``t * hop``; the signal is zero outside the window.)
* dB: ``20 log10(|X| + 1e-9)`` floored at -100 dB, min-max scaled per channel strip
  (R x F) to 0..255, rounded to nearest, uint8 (a constant strip becomes 0; a spread of at
  most ``FLAT_DB`` = 1e-9 dB counts as constant: it is rounding noise, e.g. the flat spectrum
  of a lone impulse); rows are flipped so that DC is the bottom row.
* Channel strips sit side by side, in channel order, centred horizontally on a black R x R
  canvas: width ``W = C * F``, left offset ``(R - W) // 2``.

Engine
------
Log bins.  The Hann window is symmetric about the frame centre ``c = R - 1``, so each frame
is folded into its even part ``x[c+k] + x[c-k]`` and odd part ``x[c+k] - x[c-k]``
(``k = 0 .. R-2``; ``w = 0`` at ``k = R-1``): up to the phase ``exp(-2 pi i f c)``, which drops
out of the magnitude, the real part of the DFT is the even part times a windowed cosine basis
and the imaginary part the odd part times a windowed sine basis.  That halves the work of the
plain ``frames (n) @ [cos | sin] (n x 2(R-1))`` product.  The low-frequency columns of each
basis are numerically of low rank (the log-spaced frequencies are much denser there than
the frequency resolution of the window), so they are applied as a truncated-SVD product
``(frames @ U) @ (S V^T)``, truncated far below float32 resolution; that removes another
~45% of the work at R = 512.  The bases are cached per resolution.

All frames (every frame of every channel of a chunk of windows; frames are the columns) go
through these products in float32.  Each channel is first demeaned in float64 and scaled
by a power of two (exact, undone in the dB step), so float32 never under- or overflows.
float32 is not accurate enough for every input: a bin far below the energy of its frame
(sinusoids, steps, integrated random walks, zero padding under the window's tail) can be off
by several dB.  Every bin therefore has an error bound (``_GAMMA`` times a windowed norm of
its frame; the largest error measured on hard signals is a fifth of it), and the bins whose
bound could move them by half a grey level in their strip are recomputed exactly in float64
(:func:`_refine`); strips spanning less than 2 dB are computed in float64 throughout.  The
result matches the float64 definition to within one grey level (the tests check this).

Chunks of windows are spread over the CPU cores, each thread running whole chunks with
numpy's OpenBLAS kept to one thread meanwhile (:func:`_single_threaded_blas`); a single
chunk instead splits its element-wise stages over the cores.

Linear bins use a float64 real FFT of the windowed frames.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from sd_core.errors import SdError

__all__ = [
    "BINS",
    "SpectrogramPlan",
    "SpectrogramSizeError",
    "plan_spectrogram",
    "spectrogram_image",
    "spectrogram_images",
]

BINS = ("log", "linear")

F_MIN = 0.001  # lowest log-bin frequency, cycles per sample
F_MAX = 0.5  # highest log-bin frequency, cycles per sample
EPS = 1e-9  # added to magnitudes before the dB conversion
FLOOR_DB = -100.0  # dB floor
# A strip whose dB values span no more than this is constant (the spread is rounding noise,
# e.g. the flat spectrum of a lone impulse) and becomes 0, as the definition says.
FLAT_DB = 1e-9

# Frames per chunk: enough for efficient float32 matrix products, few enough that a chunk's
# working set (a few arrays of R x frames float32) stays in the last-level cache.
_FRAMES_PER_CHUNK = 2048
# Frequency rows per block in the element-wise stages (a block stays in the core's L2 cache).
_ROW_BLOCK = 32


class SpectrogramSizeError(SdError):
    """The requested image cannot hold the channels (or the window is empty)."""


@dataclass(frozen=True)
class SpectrogramPlan:
    """Sizes of a spectrogram image; build it with :func:`plan_spectrogram`."""

    n_channels: int
    nsamps: int
    resolution: int
    bins: str
    hop: int
    n_frames: int
    window_length: int  # n = 2R - 1

    @property
    def width(self) -> int:
        """Total width of the channel strips, ``C * F`` pixels."""
        return self.n_channels * self.n_frames

    @property
    def x_offset(self) -> int:
        """Column of the first strip's left edge (the strips are centred)."""
        return (self.resolution - self.width) // 2


def _as_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def plan_spectrogram(n_channels: int, nsamps: int, resolution: int, bins: str = "log") -> SpectrogramPlan:
    """Derive hop, frame count and layout; refuse sizes that cannot work before any work.

    ``hop`` is the smallest hop >= 1 with ``n_channels * (1 + nsamps // hop) <= resolution``.
    Raises :class:`SpectrogramSizeError` when no hop fits (more channels than pixel columns),
    when ``nsamps < 1`` or ``resolution < 2``.
    """
    C = _as_count("n_channels", n_channels)
    ns = _as_count("nsamps", nsamps)
    R = _as_count("resolution", resolution)
    if bins not in BINS:
        raise ValueError(f"bins must be one of {BINS}, got {bins!r}")
    if C < 1:
        raise SpectrogramSizeError(f"a spectrogram needs at least one channel, got {C} channels")
    if R < 2:
        raise SpectrogramSizeError(
            f"spectrogram resolution must be at least 2 pixels, got {R}; use a larger resolution"
        )
    if ns < 1:
        raise SpectrogramSizeError(
            f"cannot make a spectrogram of an empty window: nsamps={ns} ({C} channels, "
            f"resolution {R}); use windows of at least 1 sample"
        )
    if C > R:
        raise SpectrogramSizeError(
            f"{C} channels do not fit in a {R}x{R} spectrogram (nsamps={ns}): every channel "
            f"needs at least one column, so the narrowest reachable width is {C} pixels > {R}; "
            f"use a resolution of at least {C} or at most {R} channels"
        )
    # F(hop) = 1 + ns // hop must be <= q + 1 with q = R // C - 1, i.e. ns // hop <= q,
    # i.e. hop > ns / (q + 1): the smallest such hop is ns // (q + 1) + 1 (or 1).
    q = R // C - 1
    hop = 1 if ns <= q else ns // (q + 1) + 1
    F = 1 + ns // hop
    assert C * F <= R and (hop == 1 or C * (1 + ns // (hop - 1)) > R)
    return SpectrogramPlan(
        n_channels=C, nsamps=ns, resolution=R, bins=bins, hop=hop, n_frames=F, window_length=2 * R - 1
    )


def log_frequencies(resolution: int) -> np.ndarray:
    """The R-1 log-bin frequencies (cycles per sample) of rows 1..R-1, float64."""
    return 10.0 ** np.linspace(math.log10(F_MIN), math.log10(F_MAX), resolution - 1)


# --------------------------------------------------------------------------- threads

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _n_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


_LOCAL = threading.local()  # .inline: this thread already is one of the parallel workers


def _parallel(fn, n_items: int) -> None:
    """Run ``fn(start, stop)`` over contiguous parts of ``range(n_items)``, one per core.

    numpy releases the GIL in its loops and matrix products, so the parts run in parallel.
    Inside a part, nested calls run inline.
    """
    global _POOL
    parts = 1 if getattr(_LOCAL, "inline", False) else min(_n_threads(), n_items)
    if parts <= 1:
        fn(0, n_items)
        return
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_n_threads(), thread_name_prefix="sd-spectrogram")
        pool = _POOL
    bounds = [n_items * i // parts for i in range(parts + 1)]
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    fn(bounds[0], bounds[1])
    for fut in futures:
        fut.result()


@lru_cache(maxsize=1)
def _blas_thread_api():
    """``(get, set)`` for the thread count of numpy's OpenBLAS, or None if not found."""
    try:
        import ctypes

        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except (OSError, ImportError):
        return None
    # numpy's bundled OpenBLAS if there is one; otherwise only an unambiguous single library
    own = sorted(p for p in paths if "numpy" in p)
    candidates = own or (sorted(paths) if len(paths) == 1 else [])
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in (
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
            ("openblas_get_num_threads", "openblas_set_num_threads"),
        ):
            get, set_ = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    return None


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_SAVED = 1


@contextmanager
def _single_threaded_blas():
    """Make numpy's OpenBLAS single-threaded while our own threads run whole chunks.

    Yields False (and changes nothing) when the OpenBLAS thread API is not found.  The count
    is process-wide: it is restored when the last concurrent user leaves.
    """
    global _BLAS_USERS, _BLAS_SAVED
    api = _blas_thread_api()
    if api is None:
        yield False
        return
    get, set_ = api
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_SAVED = get()
            set_(1)
        _BLAS_USERS += 1
    try:
        yield True
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                set_(_BLAS_SAVED)


# --------------------------------------------------------------------------- log basis


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
class _LogBasis:
    cos: _Factored
    sin: _Factored
    errcol: np.ndarray  # (R-1,) float64, amplitude error bound per unit frame norm
    bounds: tuple  # intervals (a, b) of frequency rows with one source each for Re and Im
    cos_t: np.ndarray  # (R-1, K) float64, exact cosine basis, one row per frequency
    sin_t: np.ndarray  # (R-1, K-1) float64, exact sine basis, one row per frequency


@lru_cache(maxsize=8)
def _log_basis(resolution: int) -> _LogBasis:
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
    fc, fs = _factor(cos_b), _factor(sin_b)
    errcol = _GAMMA * (fc.colnorm + fs.colnorm) + fc.trunc + fs.trunc
    cuts = sorted({0, fc.split, fs.split, K})
    return _LogBasis(
        fc,
        fs,
        errcol,
        tuple(itertools.pairwise(cuts)),
        np.ascontiguousarray(cos_b.T),
        np.ascontiguousarray(sin_b.T),
    )


# --------------------------------------------------------------------------- engine


def _fold(frames: np.ndarray, K: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Frames (..., n) -> even part (..., K) and odd part (..., K-1) about the centre R-1."""
    c = K  # centre index R - 1
    right = frames[..., c : c + K]
    left = frames[..., 1 : c + 1][..., ::-1]
    even = np.add(right, left, dtype=dtype)
    odd = np.subtract(right[..., 1:], left[..., 1:], dtype=dtype)
    return even, odd


def _db_of_power(p, scale):
    """dB of scaled powers (|X| * scale)^2, float64, floored."""
    db = 20.0 * np.log10(np.sqrt(p) / scale + EPS)
    return np.maximum(db, FLOOR_DB, out=db)


# A bin is recomputed in float64 when its error bound could move it by this many grey levels.
_GREY_TOL = 0.5
# Strips whose whole range is below this many dB are computed in float64 throughout.
_PRECISE_SPAN_DB = 2.0
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


def _windowed_norms(pad: np.ndarray, n: int, starts: np.ndarray) -> np.ndarray:
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


class _LogWork:
    """Buffers for the log-bin chunks of one call (allocated once, reused by every chunk)."""

    def __init__(self, plan: SpectrogramPlan, lb: _LogBasis, max_windows: int):
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


def _prepare(xb: np.ndarray, work: _LogWork) -> _LogChunk:
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
        xnorm[i0:i1] = _windowed_norms(p, n, starts).reshape(i1 - i0, C * F)
        np.copyto(pad32[i0:i1], p, casting="same_kind")
        np.copyto(rev32[i0:i1], pad32[i0:i1, :, ::-1])

    _parallel(prep, b)
    p0, p1, p2 = pad.strides
    frames64 = as_strided(pad, shape=(b, C, F, n), strides=(p0, p1, hop * p2, p2), writeable=False)
    return _LogChunk(plan, b, dc_db, scale, frames64, xnorm.reshape(-1))


def _float32_power(ch: _LogChunk, work: _LogWork) -> None:
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

    _parallel(fold, b)

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

    _parallel(square, K)
    ch.power = power
    ch.pmin = np.minimum.reduce([p[0] for p in parts])
    ch.pmax = np.maximum.reduce([p[1] for p in parts])


def _refine(ch: _LogChunk, lb: _LogBasis) -> tuple[np.ndarray, np.ndarray]:
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
    b, C = ch.dc_db.shape
    F = ch.plan.n_frames
    scale_col = ch.col_values(ch.scale)
    errcol = lb.errcol
    err_max = xnorm * errcol.max()
    eps_s = EPS * scale_col
    floor_s = 10.0 ** (FLOOR_DB / 20.0) * scale_col
    done = np.zeros((K, N), dtype=bool) if K else None
    span_old = None
    while True:
        lo_db = _db_of_power(pmin.astype(np.float64), scale_col).reshape(b, C, F).min(-1)
        hi_db = _db_of_power(pmax.astype(np.float64), scale_col).reshape(b, C, F).max(-1)
        lo_db, hi_db = np.minimum(lo_db, ch.dc_db), np.maximum(hi_db, ch.dc_db)
        span = ch.col_values(hi_db - lo_db)
        if K == 0 or (span_old is not None and np.all(span >= 0.9 * span_old)):
            break
        span_old = span
        rel = (_GREY_TOL / 255.0 / _DB_PER_REL) * span  # relative amplitude error allowed
        cols = np.nonzero(err_max > rel * (np.sqrt(pmin.astype(np.float64)) + eps_s))[0]
        if cols.size == 0:
            break
        amp = np.sqrt(power[:, cols].astype(np.float64))
        err = errcol[:, None] * xnorm[cols]
        ep = eps_s[cols]
        suspect = (err > rel[cols] * (amp + ep)) & (amp + err + ep > floor_s[cols]) & ~done[:, cols]
        jj, cc = np.nonzero(suspect)
        if jj.size == 0:
            break
        _exact_bins(ch, lb, jj, cols[cc])
        done[jj, cols[cc]] = True
        touched = np.unique(cols[cc])
        pmin[touched] = power[:, touched].min(axis=0)
        pmax[touched] = power[:, touched].max(axis=0)
    return lo_db, hi_db


def _exact_bins(ch: _LogChunk, lb: _LogBasis, jj: np.ndarray, cols: np.ndarray) -> None:
    """power[jj, cols] = exact float64 powers (folded in float64, exact basis)."""
    K = ch.power.shape[0]
    ucols, inv, counts = np.unique(cols, return_inverse=True, return_counts=True)
    e64, o64 = _fold(ch.frames64[ch.frame_index(ucols)], K)  # (m, K), (m, K-1)
    many = counts > K // 16  # frames with many suspects: whole frame with a matrix product
    if many.any():
        sel = np.nonzero(many)[0]
        re = e64[sel] @ lb.cos.full64
        im = o64[sel] @ lb.sin.full64
        ch.power[:, ucols[sel]] = (re * re + im * im).T
    few = ~many[inv]
    if few.any():
        j, r = jj[few], inv[few]
        for i0 in range(0, j.size, 4096):
            js, rs = j[i0 : i0 + 4096], r[i0 : i0 + 4096]
            re = np.einsum("ik,ik->i", e64[rs], lb.cos_t[js])
            im = np.einsum("ik,ik->i", o64[rs], lb.sin_t[js])
            ch.power[js, ucols[rs]] = re * re + im * im


# Amplitudes (true units) above which the 1e-9 in 20 log10(|X| + 1e-9) moves a value by less
# than 1e-4 dB; if every bin of a chunk is above it, the pixel step works on the powers.
_NO_EPS_AMP = 1e5 * EPS


def _pixels(ch: _LogChunk, work: _LogWork, lo_db: np.ndarray, hi_db: np.ndarray):
    """uint8 pixels (R-1, N) of the log bins, DC pixels (b, C), strip spans (b, C)."""
    power = ch.power
    K, N = power.shape
    span = hi_db - lo_db
    gain = np.zeros_like(span)
    np.divide(255.0, span, out=gain, where=span > FLAT_DB)
    # pixel = round((20 log10(|X| + eps) - lo) * gain) with |X| = a / scale:
    # 20 log10(a + eps*scale) * gain + (-20 log10(scale) - lo) * gain; +0.5 and truncation
    # rounds to nearest; the -100 dB floor is pixel 0 (lo >= -100).
    scale_col = ch.col_values(ch.scale)
    plain = bool(np.all(np.sqrt(ch.pmin.astype(np.float64)) >= _NO_EPS_AMP * scale_col))
    eps_col = np.minimum(EPS * scale_col, 1e30).astype(np.float32)  # (no float32 overflow)
    # with no eps: 10 log10(a^2) * gain + ...
    g = ch.col_values((10.0 if plain else 20.0) * gain).astype(np.float32)
    off = ch.col_values((-20.0 * np.log10(ch.scale) - lo_db) * gain + 0.5).astype(np.float32)
    pix = work.array("pix", K, N)

    def run(j0, j1):
        for a in range(j0, j1, _ROW_BLOCK):
            z = min(a + _ROW_BLOCK, j1)
            v = power[a:z]
            if not plain:
                np.sqrt(v, out=v)
                v += eps_col
            np.log10(v, out=v)
            v *= g
            v += off
            np.clip(v, 0.0, 255.75, out=v)
            np.copyto(pix[a:z], v, casting="unsafe")

    _parallel(run, K)
    ch.power = None  # overwritten
    dc_pix = np.rint((ch.dc_db - lo_db) * gain).astype(np.uint8)
    return pix, dc_pix, span


def _log_chunk(xb: np.ndarray, work: _LogWork, out: np.ndarray) -> None:
    """Log-bin images of windows xb (b, C, nsamps) float64 into out (b, R, R) uint8."""
    plan, lb = work.plan, work.lb
    ch = _prepare(xb, work)
    _float32_power(ch, work)
    lo_db, hi_db = _refine(ch, lb)
    pix, dc_pix, span = _pixels(ch, work, lo_db, hi_db)
    b, C = span.shape
    R, F = plan.resolution, plan.n_frames
    # Strips whose range is tiny: float32 dB cannot resolve their grey levels: float64.
    for i, c in np.argwhere((span > FLAT_DB) & (span < _PRECISE_SPAN_DB)):
        e64, o64 = _fold(ch.frames64[i, c], R - 1)
        re, im = e64 @ lb.cos.full64, o64 @ lb.sin.full64
        db = np.empty((F, R))
        db[:, 0] = ch.dc_db[i, c]
        db[:, 1:] = _db_of_power(re * re + im * im, ch.scale[i, c])
        lo, hi = db.min(), db.max()
        gain64 = 255.0 / (hi - lo) if hi - lo > FLAT_DB else 0.0
        u8 = np.rint((db - lo) * gain64).astype(np.uint8)
        col = (i * C + c) * F
        pix[:, col : col + F] = u8[:, 1:].T
        dc_pix[i, c] = u8[0, 0]
    # image row R-1-r holds frequency row r (DC at the bottom); strips centred
    x0, W = plan.x_offset, C * F
    for i in range(b):
        out[i, R - 2 :: -1, x0 : x0 + W] = pix[:, i * W : (i + 1) * W]
        out[i, R - 1, x0 : x0 + W] = np.repeat(dc_pix[i], F)


@lru_cache(maxsize=8)
def _periodic_hann(R: int) -> np.ndarray:
    k = np.arange(R, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / R)


def _linear_chunk(xb: np.ndarray, plan: SpectrogramPlan, out: np.ndarray) -> None:
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
        gain = np.zeros_like(span)
        np.divide(255.0, span, out=gain, where=span > FLAT_DB)
        db -= lo
        db *= gain
        np.rint(db, out=db)
        np.copyto(pix[i0:i1], db, casting="unsafe")

    _parallel(work, b)
    x0 = plan.x_offset
    # image row R-1-r holds frequency row r; column x0 + c*F + t holds frame t of channel c
    out[:, ::-1, x0 : x0 + C * F] = pix.transpose(0, 3, 1, 2).reshape(b, R, C * F)


def spectrogram_images(windows: np.ndarray, plan: SpectrogramPlan) -> np.ndarray:
    """Spectrogram images of a batch of windows.

    ``windows``: array (B, C, nsamps) of real numbers (any float dtype), with C and nsamps as
    in ``plan``.  Returns (B, R, R) uint8.
    """
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
    per_chunk = max(1, _FRAMES_PER_CHUNK // (C * plan.n_frames))
    chunks = [(b0, min(B, b0 + per_chunk)) for b0 in range(0, B, per_chunk)]
    lb = _log_basis(R) if plan.bins == "log" else None

    def run(c0: int, c1: int) -> None:
        work = _LogWork(plan, lb, chunks[c0][1] - chunks[c0][0]) if lb is not None else None
        for b0, b1 in chunks[c0:c1]:
            xb = np.asarray(x[b0:b1], dtype=np.float64)
            if work is not None:
                _log_chunk(xb, work, out[b0:b1])
            else:
                _linear_chunk(xb, plan, out[b0:b1])

    def run_inline(c0: int, c1: int) -> None:
        _LOCAL.inline = True
        try:
            run(c0, c1)
        finally:
            _LOCAL.inline = False

    if len(chunks) > 1 and _n_threads() > 1 and not getattr(_LOCAL, "inline", False):
        # Each thread takes whole chunks, matrix products included, with BLAS kept to one
        # thread: every core stays busy with no hand-offs between stages.
        with _single_threaded_blas() as single:
            if single:
                _parallel(run_inline, len(chunks))
                return out
    # One chunk at a time: matrix products with BLAS threads, other stages split by rows.
    run(0, len(chunks))
    return out


def spectrogram_image(window: np.ndarray, resolution: int = 256, bins: str = "log") -> np.ndarray:
    """Spectrogram image (R, R) uint8 of one window (C, nsamps)."""
    w = np.asarray(window)
    if w.ndim != 2:
        raise ValueError(f"window must have shape (C, nsamps), got {w.shape}")
    plan = plan_spectrogram(w.shape[0], w.shape[1], resolution, bins)
    return spectrogram_images(w[None], plan)[0]
