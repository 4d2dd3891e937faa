"""One subject's recordings → PNG images and metadata rows. Runs inside worker processes.

Memory stays bounded by one recording (more only while they are small and read ahead, see
:mod:`sd_core.preprocess.reading`), and its windows are turned into images in chunks.
"""

from __future__ import annotations

import sys
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sd_core.errors import SdError
from sd_core.plugins.dataset import DatasetPlugin, Recording, Subject
from sd_core.preprocess import layout
from sd_core.preprocess.reading import ReadAhead, read_resampled, read_span  # noqa: F401 (re-exported)
from sd_core.runs.files import atomic_write_bytes, is_resource_fault
from sd_core.runs.owned import check_replaceable, sha256_bytes, sha256_file

CHUNK = 64  # windows turned into images at once


@dataclass
class SubjectJob:
    plugin: DatasetPlugin
    subject: Subject
    split: str
    out: Path
    params: Mapping[str, Any]  # see params.run_parameters
    options: Mapping[str, Any]
    files: Any = None  # SubjectFiles, made in the worker by process_subject


@dataclass
class SubjectResult:
    subject: str
    split: str
    status: str  # "done", "partial" (some recordings failed) or "failed"
    images: int
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)  # of errors that are bugs, not bad data
    fault: bool = False  # an error that is not the data's: a plugin bug, a worker that failed


def describe_error(exc: BaseException) -> str:
    """One line for the run summary."""
    if isinstance(exc, SdError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _plugin_root(plugin: DatasetPlugin) -> Path | None:
    top = sys.modules.get(type(plugin).__module__.split(".")[0])
    path = getattr(top, "__file__", None)
    if not path:
        return None
    path = Path(path).resolve()
    return path.parent if path.name == "__init__.py" else path


def describe_failure(exc: BaseException, plugin: DatasetPlugin) -> tuple[str, str | None]:
    """(one line, traceback or None) for an exception while processing a recording.

    An :class:`SdError` is the plugin's or the core's own message about the data. Anything else
    raised in the plugin's code, or in a hook other than ``read_raw``, is a bug of the plugin:
    it is reported with the plugin, the hook and the file and line, and its traceback is kept.
    An error raised by a library inside ``read_raw`` (MNE on a damaged file, say) is data.
    """
    if isinstance(exc, SdError):
        return str(exc), None
    if isinstance(exc, SystemExit):
        return f"plugin {plugin.name!r} called sys.exit({exc.code!r})", "".join(traceback.format_exception(exc))
    root = _plugin_root(plugin)
    frames = traceback.extract_tb(exc.__traceback__)
    def in_plugin(f) -> bool:
        try:
            return root is not None and (Path(f.filename).resolve() == root or root in Path(f.filename).resolve().parents)
        except OSError:
            return False
    mine = [f for f in frames if in_plugin(f)]
    hook = mine[0].name if mine else None
    raised_in_plugin = bool(frames) and in_plugin(frames[-1])
    if hook is None or (hook == "read_raw" and not raised_in_plugin):
        return describe_error(exc), None
    where = f"{Path(mine[-1].filename).name}:{mine[-1].lineno}"
    return (f"plugin {plugin.name!r} failed in {hook} ({where}): {describe_error(exc)}",
            "".join(traceback.format_exception(exc)))


class SubjectFiles:
    """The images of one subject: written only where sd may write (see :mod:`sd_core.runs.owned`).

    Paths sd wrote before (the subject's last state, or its intent log after a killed run) may
    be replaced; any other file in the way fails the recording with an error naming it."""

    def __init__(self, out: Path, subject: str, previous: Mapping[str, str | None]) -> None:
        self.out = out
        self.log = layout.subject_log(out, subject)
        self.known: dict[str, str | None] = {**dict(previous), **{r: None for r in self.log.read()}}
        self.written: dict[str, str] = {}

    def write(self, rel: str, data: bytes) -> None:
        check_replaceable(self.out, rel, self.known)
        self.log.add(rel)
        self.known[rel] = None
        atomic_write_bytes(self.out / rel, data)
        self.written[rel] = sha256_bytes(data)

    def record(self) -> dict[str, str]:
        """Every image of the subject sd wrote and that is still there, with its hash."""
        files = {}
        for rel, digest in self.known.items():
            if rel in self.written:
                files[rel] = self.written[rel]
            elif (self.out / rel).is_file():
                files[rel] = digest or sha256_file(self.out / rel)
        return dict(sorted(files.items()))


def process_recording(job: SubjectJob, rec: Recording, loaded: tuple[np.ndarray, float, list[str]],
                      notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The images and metadata rows of one recording, from its samples (``read_resampled``'s
    result).

    The spectrogram plan follows from ``job.params`` and the number of channels found (it
    depends on the file where the channel list holds ``"*"``).  What the run did differently
    from the original project (a non-integer rate ratio, a hop the original's rule could not
    give) is appended to ``notes``.
    """
    from sd_core.preprocess.params import fixed_channel_count, spectrogram_plan
    from sd_core.preprocess.png import LEGACY, encode_all
    from sd_core.signals.windows import make_windows, window_starts
    from sd_core.spectrogram import spectrogram_images

    p = job.params
    fs, nsamps = p["fs"], p["nsamps"]
    data, t0, said = loaded
    plan = spectrogram_plan(p, data.shape[0])
    if notes is not None:
        notes += [f"{job.subject.id}/{rec.id}: {n}" for n in said]
        if plan.note and fixed_channel_count(p["channels"]) is None:
            notes.append(f"{job.subject.id}/{rec.id}: {data.shape[0]} channels: {plan.note}")
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
        for i, png in zip(idx, encode_all(images, p.get("png", LEGACY))):
            rel = layout.image_rel_path(job.split, subject.id, rec.id, i)
            job.files.write(rel, png)
            row = {"file_name": rel, **base, **labels[i], "window": i, "start": spans[i][0]}
            row["caption"] = job.plugin.caption(row)
            rows.append(row)
    return rows


def previous_files(out: Path, subject: str) -> dict[str, str | None]:
    path = layout.subject_state_path(out, subject)
    if not path.is_file():
        return {}
    try:
        return layout.subject_files(layout.read_json(path))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SdError(f"{path}: not a subject state written by sd") from None


def write_state(job: SubjectJob, result: SubjectResult, rows: list, files: Mapping[str, str | None]) -> None:
    layout.write_json(layout.subject_state_path(job.out, result.subject), {
        "subject": result.subject, "split": result.split, "status": result.status,
        "images": result.images, "errors": result.errors, "notes": result.notes,
        "tracebacks": result.tracebacks, "fault": result.fault, "rows": rows, "files": dict(files),
    })


def process_subject(job: SubjectJob, reader: ReadAhead | None = None,
                    following: SubjectJob | None = None) -> SubjectResult:
    """Make every image of one subject and record the outcome in its state file.

    ``reader`` reads recordings ahead (a new one when None); ``following``: the subject the
    caller processes next, whose first recordings it starts reading during this one's last.
    Stale temporary files are cleaned by the runner once, before workers start: here they may
    belong to another worker's subject in flight."""
    sid = job.subject.id
    job.files = SubjectFiles(job.out, sid, previous_files(job.out, sid))

    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    notes: list[str] = []
    tracebacks: list[str] = []
    recs = list(job.subject.recordings)
    queue = [(job.plugin, r, job.params, job.options) for r in recs]
    if following is not None:
        queue += [(following.plugin, r, following.params, following.options) for r in following.subject.recordings]
    with (nullcontext(reader) if reader is not None else ReadAhead()) as ahead:
        for k, rec in enumerate(recs):
            try:
                loaded = ahead.read(job.plugin, rec, job.params, job.options, queue[k + 1 :])
                got = process_recording(job, rec, loaded, notes)
            except (Exception, SystemExit) as exc:  # one bad recording never stops the others
                if is_resource_fault(exc):  # ... but a full disk stops the run: what is done is kept
                    raise
                line, tb = describe_failure(exc, job.plugin)
                errors.append(f"{sid}/{rec.id}: {line}")
                if tb:
                    tracebacks.append(f"{sid}/{rec.id}:\n{tb}")
                continue
            finally:
                loaded = None  # the samples go before the next recording is read
            if not got:
                notes.append(f"{sid}/{rec.id}: no windows (shorter than one window, or none kept)")
            rows.extend(got)
    if not job.subject.recordings:
        errors.append(f"{sid}: no recordings found")
    status = "done" if not errors else ("partial" if rows else "failed")
    notes = _once(notes)
    result = SubjectResult(sid, job.split, status, len(rows), errors, notes, tracebacks, bool(tracebacks))
    write_state(job, result, rows, job.files.record())
    job.files.log.remove()
    return result


def _once(notes: list[str]) -> list[str]:
    """Notes without repeats of one text for several recordings of a file (SEED-V's trials each
    open their session's file): the first ``<subject>/<recording>: `` prefix is kept."""
    seen, out = set(), []
    for n in notes:
        text = n.split(": ", 1)[-1]
        if text not in seen:
            seen.add(text)
            out.append(n)
    return out


def record_failure(job: SubjectJob, message: str, tb: str | None = None) -> SubjectResult:
    """The state of a subject whose worker failed: status "failed" with the real error, and the
    images its earlier attempts wrote still listed as sd's (so that they can be replaced)."""
    sid = job.subject.id
    files = SubjectFiles(job.out, sid, previous_files(job.out, sid))
    result = SubjectResult(sid, job.split, "failed", 0, [f"{sid}: {message}"], [], [tb] if tb else [], True)
    write_state(job, result, [], files.record())
    files.log.remove()
    return result
