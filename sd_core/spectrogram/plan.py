"""The definition of a spectrogram image and the planner that sizes it.

Definition (the original project's; users have models trained on images made exactly this way)
-------------------------------------------------------------------------------------------------
A window of ``nsamps`` samples of ``C`` channels becomes an ``R x R`` uint8 image:

* ``n = 2R - 1`` samples per STFT frame, frames every ``hop`` samples, ``F = 1 + nsamps // hop``
  frames per channel.  ``hop`` follows one of two rules (:data:`HOP_RULES`):

  - ``"original"`` (default): the smallest multiple of ``hop_multiple`` (4 or 8 per data set)
    with ``nsamps / hop <= floor(R / C)``.  Where that breaks (``C * F > R``: the original
    asserts; or ``nsamps % hop > n``: its padding would be negative), the next multiple that
    works is taken and :attr:`SpectrogramPlan.note` says so.
  - ``"smallest"``: the smallest hop >= 1 with ``C * (1 + nsamps // hop) <= R`` (the most
    frames that fit).

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
  (R x F) to 0..255: ``(db - lo) / (hi - lo) * 255``, then truncated (``rounding="truncate"``,
  the original's) or rounded to nearest (``"nearest"``), uint8.  A constant strip becomes 0
  (a spread of at most ``FLAT_DB`` = 1e-9 dB counts as constant: it is rounding noise, e.g.
  the flat spectrum of a lone impulse).  Rows are flipped so that DC is the bottom row.
* Channel strips sit side by side, in channel order, centred horizontally on a black R x R
  canvas: width ``W = C * F``, left offset ``(R - W) // 2``.

The 1e-9 and the -100 dB floor are absolute: the units of the input matter (the original
computes in volts, where the floor decides much of the picture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sd_core.errors import SdError

BINS = ("log", "linear")
HOP_RULES = ("original", "smallest")
ROUNDINGS = ("truncate", "nearest")

F_MIN = 0.001  # lowest log-bin frequency, cycles per sample
F_MAX = 0.5  # highest log-bin frequency, cycles per sample
EPS = 1e-9  # added to magnitudes before the dB conversion
FLOOR_DB = -100.0  # dB floor
# A strip whose dB values span no more than this is constant (the spread is rounding noise,
# e.g. the flat spectrum of a lone impulse) and becomes 0, as the definition says.
FLAT_DB = 1e-9


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
    rounding: str = "truncate"
    note: str = ""  # where the hop rule had to give way, what was done instead

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


def _smallest_hop(C: int, ns: int, R: int) -> int:
    # F(hop) = 1 + ns // hop must be <= q + 1 with q = R // C - 1, i.e. ns // hop <= q,
    # i.e. hop > ns / (q + 1): the smallest such hop is ns // (q + 1) + 1 (or 1).
    q = R // C - 1
    return 1 if ns <= q else ns // (q + 1) + 1


def _original_hop(C: int, ns: int, R: int, m: int) -> tuple[int, str]:
    """The original's hop rule and, where it breaks, the next multiple of ``m`` that works."""
    n = 2 * R - 1
    per = R // C  # nsamps / hop <= floor(R / C)  <=>  hop >= ceil(nsamps / per)
    least = -(-ns // per)  # ceil(nsamps / per)
    hop = m * max(1, -(-least // m))
    first = hop

    def fits(h: int) -> bool:
        return C * (1 + ns // h) <= R

    def pads(h: int) -> bool:
        return ns % h <= n

    # beyond ns + m every hop gives one frame and the same padding: the search ends there
    limit = max(hop, ns + m)
    good = next((h for h in range(hop, limit + 1, m) if fits(h) and pads(h)), None)
    if good is None:  # no multiple pads; frames past the last one are simply not used
        good = next(h for h in range(hop, limit + 1, m) if fits(h))
    if good == first:
        return good, ""
    F0 = 1 + ns // first
    why = (f"{C} channels x {F0} frames = {C * F0} columns > {R}" if not fits(first)
           else f"nsamps {ns} mod hop {first} = {ns % first} > {n} (negative padding)")
    return good, (f"the original hop rule gives {first} ({why}, where the original fails); "
                  f"took {good}, the next multiple of {m} that works")


def plan_spectrogram(
    n_channels: int,
    nsamps: int,
    resolution: int,
    bins: str = "log",
    *,
    hop: str = "original",
    hop_multiple: int = 4,
    rounding: str = "truncate",
) -> SpectrogramPlan:
    """Derive hop, frame count and layout; refuse sizes that cannot work before any work.

    ``hop`` is the rule (see the module's definition): ``"original"`` with ``hop_multiple``,
    or ``"smallest"``.  Raises :class:`SpectrogramSizeError` when no hop fits (more channels
    than pixel columns), when ``nsamps < 1`` or ``resolution < 2``.
    """
    C = _as_count("n_channels", n_channels)
    ns = _as_count("nsamps", nsamps)
    R = _as_count("resolution", resolution)
    m = _as_count("hop_multiple", hop_multiple)
    if bins not in BINS:
        raise ValueError(f"bins must be one of {BINS}, got {bins!r}")
    if hop not in HOP_RULES:
        raise ValueError(f"hop must be one of {HOP_RULES}, got {hop!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if m < 1:
        raise ValueError(f"hop_multiple must be at least 1, got {m}")
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
    note = ""
    if hop == "smallest":
        h = _smallest_hop(C, ns, R)
    else:
        h, note = _original_hop(C, ns, R, m)
    F = 1 + ns // h
    assert C * F <= R
    return SpectrogramPlan(
        n_channels=C, nsamps=ns, resolution=R, bins=bins, hop=h, n_frames=F,
        window_length=2 * R - 1, rounding=rounding, note=note,
    )


def log_frequencies(resolution: int) -> np.ndarray:
    """The R-1 log-bin frequencies (cycles per sample) of rows 1..R-1, float64."""
    return 10.0 ** np.linspace(math.log10(F_MIN), math.log10(F_MAX), resolution - 1)


def to_grey(db: np.ndarray, lo, span, rounding: str) -> np.ndarray:
    """Grey levels (uint8) of dB values in a strip from ``lo`` spanning ``span`` dB, float64:
    ``(db - lo) / span * 255`` truncated or rounded; 0 where the strip is constant."""
    span = np.asarray(span, dtype=np.float64)
    flat = span <= FLAT_DB
    v = (np.asarray(db, dtype=np.float64) - lo) / np.where(flat, 1.0, span) * 255.0
    v = np.floor(v) if rounding == "truncate" else np.rint(v)
    v = np.clip(np.where(flat, 0.0, v), 0.0, 255.0)
    return v.astype(np.uint8)
