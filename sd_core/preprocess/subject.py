"""One subject's recordings → PNG images and metadata rows. Runs inside worker processes.

Memory stays bounded by one recording: each recording is opened without preloading, only
the selected channels of its span are read, and its windows are turned into images in chunks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import DatasetError, SdError
from sd_core.io import atomic_write_bytes
from sd_core.preprocess import layout

CHUNK = 64  # windows turned into images at once


@dataclass
class SubjectJob:
    plugin: DatasetPlugin
    subject: Subject
    split: str
    out: Path
    params: Mapping[str, Any]  # see params.run_parameters
    options: Mapping[str, Any]


@dataclass
class SubjectResult:
    subject: str
    split: str
    status: str  # "done", "partial" (some recordings failed) or "failed"
    images: int
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def describe_error(exc: BaseException) -> str:
    """One line for the run summary."""
    if isinstance(exc, SdError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def read_span(plugin: DatasetPlugin, rec: Recording, channels: list[str], options) -> tuple[np.ndarray, float, float]:
    """(channels × samples in µV, sampling rate, start time in s) of the recording's span."""
    from sd_core.channels import match_channels

    raw = plugin.read_raw(rec, options)
    names = [plugin.channel_name(n) for n in raw.ch_names]
    picks = match_channels(channels, names, where=f"{rec.path.name}")
    bads = set(raw.info.get("bads") or ())
    hit = [names[i] for i in picks if raw.ch_names[i] in bads]
    if hit:
        raise DatasetError(f"{rec.path.name}: channel(s) {', '.join(hit)} marked bad in the recording's "
                           "metadata; recording skipped")
    fs = float(raw.info["sfreq"])
    n_times = int(raw.n_times)
    start = 0 if rec.start is None else int(round(rec.start * fs))
    stop = n_times if rec.stop is None else int(round(rec.stop * fs))
    if stop > n_times + fs:  # more than a second missing: a truncated file, not rounding
        raise DatasetError(f"{rec.path.name}: span {rec.start}–{rec.stop} s runs past the end of the "
                           f"recording ({n_times / fs:.1f} s); the file may be truncated")
    stop = min(stop, n_times)
    if start >= stop:
        raise SdError(f"{rec.path.name}: span {rec.start}–{rec.stop} s is outside the recording "
                      f"({n_times / fs:.1f} s)")
    data = raw.get_data(picks=picks, start=start, stop=stop) * 1e6
    if not np.all(np.isfinite(data)):
        raise SdError(f"{rec.path.name}: the recording contains NaN or infinite samples")
    return data, fs, start / fs


def process_recording(job: SubjectJob, rec: Recording, plan) -> list[dict[str, Any]]:
    from sd_core.signal import make_windows, resample, window_starts
    from sd_core.spectrogram import spectrogram_images

    p = job.params
    fs, nsamps = p["fs"], p["nsamps"]
    data, fs_in, t0 = read_span(job.plugin, rec, p["channels"], job.options)
    data = resample(data, fs_in, fs)
    starts = window_starts(data.shape[1], nsamps, p["overlap"])
    spans = [(round(t0 + s / fs, 6), round(t0 + (s + nsamps) / fs, 6)) for s in starts]
    labels = job.plugin.label_windows(rec, spans, job.options) if spans else []
    if len(labels) != len(spans):
        raise SdError(f"plugin {job.plugin.name!r} labelled {len(labels)} of {len(spans)} windows")
    keep = [i for i, lab in enumerate(labels) if lab is not None]

    subject = job.subject
    base = {"split": job.split, "dataset": job.plugin.name, "subject": subject.id,
            **dict(subject.labels), **dict(rec.labels), "recording": rec.id}
    rows = []
    for c in range(0, len(keep), CHUNK):
        idx = keep[c:c + CHUNK]
        images = spectrogram_images(make_windows(data, starts[idx], nsamps), plan)
        for i, image in zip(idx, images):
            rel = layout.image_rel_path(job.split, subject.id, rec.id, i)
            atomic_write_bytes(job.out / rel, png_bytes(image))
            row = {"file_name": rel, **base, **labels[i], "window": i, "start": spans[i][0]}
            row["caption"] = job.plugin.caption(row)
            rows.append(row)
    return rows


def process_subject(job: SubjectJob) -> SubjectResult:
    """Make every image of one subject and record the outcome in its state file."""
    from sd_core.spectrogram import plan_spectrogram

    p = job.params
    plan = plan_spectrogram(len(p["channels"]), p["nsamps"], p["resolution"], p["bins"])
    sid = job.subject.id
    layout.remove_stale_temporaries(job.out / job.split / sid)
    layout.remove_stale_temporaries(layout.subject_state_path(job.out, sid).parent)

    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    notes: list[str] = []
    for rec in job.subject.recordings:
        try:
            got = process_recording(job, rec, plan)
        except Exception as exc:  # one bad recording never stops the others
            errors.append(f"{sid}/{rec.id}: {describe_error(exc)}")
            continue
        if not got:
            notes.append(f"{sid}/{rec.id}: no windows (shorter than one window, or none kept)")
        rows.extend(got)
    if not job.subject.recordings:
        errors.append(f"{sid}: no recordings found")
    status = "done" if not errors else ("partial" if rows else "failed")
    result = SubjectResult(sid, job.split, status, len(rows), errors, notes)
    layout.write_json(layout.subject_state_path(job.out, sid), {
        "subject": sid, "split": job.split, "status": status, "images": len(rows),
        "errors": errors, "notes": notes, "rows": rows,
    })
    return result
