"""Reading a recording's samples for preprocessing: open it through its plugin, pick its image
channels by name, cut its span, and resample it the original project's way (or polyphase).

Memory stays bounded: each recording is opened without preloading, only the selected channels
of its span are read, it is decimated in its own buffer, and recordings are read ahead
(:class:`ReadAhead`) only while they are small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from sd_core.errors import DatasetError, SdError
from sd_core.plugins.dataset import DatasetPlugin, Recording


def _open(plugin: DatasetPlugin, rec: Recording, channels: list[str], options):
    """(raw, picks, sampling rate) of a recording, its image channels picked by name."""
    from sd_core.signals.channels import match_channels

    raw = plugin.read_raw(rec, options)
    names = [plugin.channel_name(n) for n in raw.ch_names]
    picks = match_channels(channels, names, where=f"{rec.path.name}")
    bads = set(raw.info.get("bads") or ())
    hit = [names[i] for i in picks if raw.ch_names[i] in bads]
    if hit:
        raise DatasetError(f"{rec.path.name}: channel(s) {', '.join(hit)} marked bad in the recording's "
                           "metadata; recording skipped")
    return raw, picks, float(raw.info["sfreq"])


def _check_span(rec: Recording, start: int, stop: int, n_times: int, fs: float) -> int:
    """``stop`` clipped to the recording; refuses spans that do not fit it."""
    if stop > n_times + fs:  # more than a second missing: a truncated file, not rounding
        raise DatasetError(f"{rec.path.name}: span {rec.start}–{rec.stop} s runs past the end of the "
                           f"recording ({n_times / fs:.1f} s); the file may be truncated")
    stop = min(stop, n_times)
    if start >= stop:
        raise SdError(f"{rec.path.name}: span {rec.start}–{rec.stop} s is outside the recording "
                      f"({n_times / fs:.1f} s)")
    return stop


def _get(raw, picks, start: int, stop: int, rec: Recording, units: str) -> np.ndarray:
    from sd_core.preprocess.params import UNIT_FACTORS

    data = raw.get_data(picks=picks, start=start, stop=stop)
    if not (data.flags.owndata and data.flags.writeable and data.dtype == np.float64):
        data = np.array(data, dtype=np.float64)  # a copy of its own, changed in place below
    if units != "V":  # in place: no second recording in memory
        np.multiply(data, UNIT_FACTORS[units], out=data)
    for c in range(0, data.shape[0], 4):  # a few channels at a time: no recording-sized mask
        if not np.isfinite(data[c : c + 4]).all():
            raise SdError(f"{rec.path.name}: the recording contains NaN or infinite samples")
    return data


def read_span(plugin: DatasetPlugin, rec: Recording, channels: list[str], options,
              units: str = "uV") -> tuple[np.ndarray, float, float]:
    """(channels × samples in ``units`` ("uV" or "V"), sampling rate, start time in s) of the
    recording's span, at the file's rate."""
    raw, picks, fs = _open(plugin, rec, channels, options)
    n_times = int(raw.n_times)
    start = 0 if rec.start is None else int(round(rec.start * fs))
    stop = n_times if rec.stop is None else int(round(rec.stop * fs))
    stop = _check_span(rec, start, stop, n_times, fs)
    return _get(raw, picks, start, stop, rec, units), fs, start / fs


#: Signal read on each side of a span before decimating it (seconds): the IIR filter's start-up
#: transient dies out well within it, so the span's samples are those of the whole file decimated.
DECIMATE_MARGIN_S = 10.0


def open_resampled(plugin: DatasetPlugin, rec: Recording, params: Mapping[str, Any],
                   options) -> Callable[[], tuple[np.ndarray, float, list[str]]]:
    """Open a recording (the plugin's ``read_raw``, in the calling thread) and check its span;
    returns the step that reads its samples and resamples them (:func:`read_resampled`'s result).
    That step runs no plugin code, so it may run in another thread."""
    from sd_core.signals.resample import decimation_factor, resample

    fs, units, method = float(params["fs"]), params["units"], params["resample"]
    raw, picks, fs_in = _open(plugin, rec, params["channels"], options)
    n_times = int(raw.n_times)
    q = decimation_factor(fs_in, fs) if method == "decimate" else None
    notes = [str(n) for n in getattr(raw, "sd_notes", ())]  # how the plugin read the file
    if q is None:
        start = 0 if rec.start is None else int(round(rec.start * fs_in))
        stop = n_times if rec.stop is None else int(round(rec.stop * fs_in))
        stop = _check_span(rec, start, stop, n_times, fs_in)
        if method == "decimate" and fs_in != fs:
            notes.append(f"{rec.path.name}: {fs_in:g} Hz → {fs:g} Hz is not an integer ratio (the original "
                         "refused it): resampled with the polyphase resampler")
        return lambda: (resample(_get(raw, picks, start, stop, rec, units), fs_in, fs, "poly"), start / fs_in, notes)
    n_out = -(-n_times // q)  # samples of the whole recording decimated
    i0 = 0 if rec.start is None else int(rec.start * fs)
    i1 = n_out if rec.stop is None else int(rec.stop * fs)
    _check_span(rec, i0 * q, i1 * q, n_times, fs_in)
    i1 = min(i1, n_out)
    margin = 0 if q == 1 else int(math.ceil(DECIMATE_MARGIN_S * fs))
    a = max(0, i0 - margin)
    b = min(n_times, (i1 + margin) * q)

    def load() -> tuple[np.ndarray, float, list[str]]:
        # the buffer goes straight into compact_span: no other name holds it, so it can shrink
        return compact_span(decimated(_get(raw, picks, a * q, b, rec, units), q), i0 - a, i1 - i0), i0 / fs, notes

    return load


def decimated(buf: np.ndarray, q: int) -> np.ndarray:
    """``buf`` decimated by ``q``: ``buf`` itself, each row's decimated samples at its start, or a
    new array where ``buf`` cannot hold them (not C-ordered, say)."""
    from sd_core.signals.resample import decimate

    out = decimate(buf, q, overwrite=True)
    return buf if np.may_share_memory(out, buf) else out  # out: a view of buf, or a new array


def compact_span(buf: np.ndarray, start: int, width: int) -> np.ndarray:
    """Columns ``start`` … ``start + width`` of an array that owns its memory, in that memory
    shrunk to their size (rows moved to the front, the buffer reallocated smaller): a recording
    decimated in place keeps 1/q of its buffer, not all of it. The array's contents are moved, so
    pass the array itself (as a call's result): numpy shrinks a buffer only when no other name
    refers to it; where one does, the result is a view of the moved columns."""
    rows, cols = buf.shape
    if not (buf.flags.owndata and buf.flags.c_contiguous and buf.flags.writeable) or width >= cols:
        return buf[:, start : start + width]
    flat = buf.reshape(-1)
    for r in range(rows):  # moves to lower addresses; numpy copies overlapping ranges correctly
        flat[r * width : (r + 1) * width] = flat[r * cols + start : r * cols + start + width]
    del flat
    try:
        buf.resize((rows, width), refcheck=True)
    except ValueError:  # still referenced elsewhere: the rows stay where they are
        return buf.reshape(-1)[: rows * width].reshape(rows, width)
    return buf


def read_resampled(plugin: DatasetPlugin, rec: Recording, params: Mapping[str, Any],
                   options) -> tuple[np.ndarray, float, list[str]]:
    """(channels × samples at ``params["fs"]`` in ``params["units"]``, start time in s, notes).

    ``resample = "decimate"`` with an integer rate ratio q does what the original did: the
    whole recording decimated (``scipy.signal.decimate``), a span cut from it at
    ``int(start · fs)`` … ``int(stop · fs)``; only the span and a margin of
    :data:`DECIMATE_MARGIN_S` around it are read, from a sample that is a multiple of q.  Other
    ratios, and ``resample = "poly"``, resample the span with the polyphase resampler.
    """
    return open_resampled(plugin, rec, params, options)()


#: Read ahead only while the current recording's samples take less than this (counting the whole
#: buffer they sit in): reading ahead holds several recordings, and for long ones (an hour of
#: CHB-MIT is 81 MB once decimated to 128 Hz, 162 MB while it is read) the time it hides is not
#: worth the memory.
PREFETCH_BYTES = 64 * 2**20
#: Recordings read ahead at most: two, so that a short recording followed by a long one (EEGMAT's
#: 60 s then the next subject's 180 s) does not leave the caller waiting.
DEPTH = 2


def estimated_bytes(rec: Recording) -> int:
    """The samples of a recording, decoded, estimated from its files' sizes before it is read
    (four times the file and its siblings of the same name: 16-bit samples read as float64);
    a file that cannot be sized counts as large."""
    try:
        return 4 * sum(p.stat().st_size for p in rec.path.parent.glob(f"{rec.path.stem}.*") if p.is_file())
    except OSError:
        return PREFETCH_BYTES


def held_bytes(data: np.ndarray) -> int:
    """The memory an array keeps alive (its base's, for a view)."""
    while isinstance(data.base, np.ndarray):
        data = data.base
    return data.nbytes


class ReadAhead:
    """Recordings read ahead: while the caller turns one recording into images, the next ones'
    samples are read and resampled in a background thread, across subjects when the caller says
    which recordings follow. Plugin code (``read_raw``) runs in the calling thread; only MNE's
    reading and the resampling move. At most :data:`DEPTH` recordings are read ahead, none once
    a recording's samples take :data:`PREFETCH_BYTES` or more, and none whose files suggest as
    much (:func:`estimated_bytes`): a short recording followed by long ones holds one long one
    at a time."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-read")
        self._ahead: list[tuple[Recording, Any]] = []

    def _start(self, plugin: DatasetPlugin, rec: Recording, params: Mapping[str, Any], options):
        try:
            return self._pool.submit(open_resampled(plugin, rec, params, options))
        except (Exception, SystemExit) as exc:  # opening failed: the recording's own error
            return exc

    def read(self, plugin: DatasetPlugin, rec: Recording, params: Mapping[str, Any], options,
             upcoming: Sequence[tuple] = ()) -> tuple[np.ndarray, float, list[str]]:
        """:func:`read_resampled` of ``rec`` (read ahead if it was the next one expected); then the
        first of ``upcoming``, ``(plugin, recording, params, options)`` of the recordings the
        caller turns to next, start reading. Raises the recording's own error."""
        if self._ahead and self._ahead[0][0] is rec:
            current = self._ahead.pop(0)[1]
        else:  # not the one expected: what was read ahead is dropped
            self._ahead = []
            current = self._start(plugin, rec, params, options)
        try:
            if isinstance(current, BaseException):
                raise current
            result = current.result()
        except BaseException:
            self._ahead = []  # the order is lost: start again from the caller's next call
            raise
        finally:
            current = None
        if held_bytes(result[0]) < PREFETCH_BYTES:
            for item in list(upcoming)[len(self._ahead) : DEPTH]:
                if estimated_bytes(item[1]) >= PREFETCH_BYTES:
                    break  # a long recording is read when its turn comes, not ahead
                self._ahead.append((item[1], self._start(*item)))
        return result

    def close(self) -> None:
        self._ahead = []
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "ReadAhead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
