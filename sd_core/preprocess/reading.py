"""Reading a recording's samples for preprocessing: open it through its plugin, pick its image
channels by name, cut its span, and resample it the original project's way (or polyphase).

Memory stays bounded by one recording (two while the next is read ahead): each recording is
opened without preloading, and only the selected channels of its span are read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from sd_core.dataset import DatasetPlugin, Recording
from sd_core.errors import DatasetError, SdError


def _open(plugin: DatasetPlugin, rec: Recording, channels: list[str], options):
    """(raw, picks, sampling rate) of a recording, its image channels picked by name."""
    from sd_core.channels import match_channels

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
    from sd_core.signal import decimate, decimation_factor, resample

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
        data = decimate(_get(raw, picks, a * q, b, rec, units), q, overwrite=True)
        return data[:, i0 - a : i1 - a], i0 / fs, notes

    return load


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


#: Read the next recording ahead only while the current one's samples take less than this: reading
#: ahead holds two recordings, and for long ones (an hour of CHB-MIT at 128 Hz is 85 MB) the time
#: it hides, a tenth of the recording's processing, is not worth the memory.
PREFETCH_BYTES = 64 * 2**20


def resampled_recordings(plugin: DatasetPlugin, recordings: Sequence[Recording], params: Mapping[str, Any],
                         options) -> Iterator[tuple[Recording, Any, BaseException | None]]:
    """``(recording, read_resampled's result or None, the error or None)`` for each recording, in
    order, reading one ahead: while the caller turns one recording into images, the next one's
    samples are read and resampled in a background thread. Plugin code (``read_raw``) runs in the
    calling thread; only MNE's reading and the resampling move. Memory holds at most two
    recordings, and only one once a recording's samples take :data:`PREFETCH_BYTES` or more."""

    def start(rec: Recording):
        try:
            return pool.submit(open_resampled(plugin, rec, params, options))
        except (Exception, SystemExit) as exc:  # opening failed: the recording's own error
            return exc

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-read") as pool:
        ahead = None
        for i, rec in enumerate(recordings):
            current, ahead = (ahead if ahead is not None else start(rec)), None
            try:
                if isinstance(current, BaseException):
                    raise current
                result = current.result()
            except (Exception, SystemExit) as exc:
                yield rec, None, exc
                continue
            if i + 1 < len(recordings) and result[0].nbytes < PREFETCH_BYTES:
                ahead = start(recordings[i + 1])
            yield rec, result, None
            del result
