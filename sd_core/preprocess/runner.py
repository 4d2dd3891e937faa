"""Running preprocessing for one data set: discovery, splits, shards, workers, resume, merge."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sd_core.errors import DatasetError, SdError
from sd_core.plugins.dataset import DatasetPlugin, Subject
from sd_core.preprocess import layout
from sd_core.preprocess.merge import merge_dataset
from sd_core.preprocess.params import (
    differences,
    resumed_parameters,
    run_parameters,
    with_png,
)
from sd_core.preprocess.splits import SPLIT_ORDER, assign_splits, read_split_file
from sd_core.preprocess.subject import (
    SubjectJob,
    SubjectResult,
    describe_error,
    process_subject,
    record_failure,
)
from sd_core.preprocess.workers import pool as _pool
from sd_core.runs.files import is_resource_fault


@dataclass
class PreprocessResult:
    dataset: str
    out: Path
    subjects: int = 0  # subjects in this run (this shard)
    skipped: int = 0  # already done (resume)
    results: list[SubjectResult] = field(default_factory=list)
    merged: bool = False
    images: dict[str, int] = field(default_factory=dict)  # per split, after merge
    seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [e for r in self.results for e in r.errors]

    @property
    def faults(self) -> list[SubjectResult]:
        """Subjects with errors that are not the data's (plugin bugs, failed workers)."""
        return [r for r in self.results if r.fault]

    @property
    def failed_subjects(self) -> list[str]:
        return [r.subject for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            k, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise SdError(f"--shard must look like K/N (for example 2/8), got {text!r}") from None
        if not (1 <= k <= n):
            raise SdError(f"--shard {text}: K must be between 1 and N")
        return cls(k, n)

    def take(self, subjects: list[Subject]) -> list[Subject]:
        """A deterministic subset: every N-th subject by sorted id, starting at the K-th."""
        ordered = sorted(subjects, key=lambda s: s.id)
        return ordered[self.index - 1 :: self.count]


def _strata(subjects: list[Subject]) -> dict[str, str]:
    """Stratify splits by the canonical categorical labels that vary in the data set."""
    keys = [k for k in ("health", "gender") if len({str(s.labels.get(k)) for s in subjects}) > 1]
    return {s.id: "_".join(str(s.labels.get(k)) for k in keys) for s in subjects}


def _discover(plugin: DatasetPlugin, raw_root: Path, options: Mapping[str, Any]) -> list[Subject]:
    if not raw_root.exists():
        raise DatasetError(
            f"raw data of {plugin.name!r} not found at {raw_root}; set [datasets.{plugin.name}] raw "
            f"in sd.toml or pass --raw"
        )
    subjects = plugin.find_subjects(raw_root, options)
    if not subjects:
        raise DatasetError(f"no subjects of {plugin.name!r} found under {raw_root}")
    ids = [s.id for s in subjects]
    dup = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dup:
        raise DatasetError(f"plugin {plugin.name!r} returned duplicate subject ids: {', '.join(dup)}")
    return sorted(subjects, key=lambda s: s.id)


def _subject_done(out: Path, subject: str) -> bool:
    path = layout.subject_state_path(out, subject)
    if not path.is_file():
        return False
    state = layout.read_json(path)
    return state.get("status") == "done" and all((out / r["file_name"]).is_file() for r in state["rows"])


def preprocess_dataset(
    plugin: DatasetPlugin,
    raw_root: Path,
    out: Path,
    prep: Mapping[str, Any],
    channels: list[str],
    options: Mapping[str, Any],
    split_file: Path | None = None,
    workers: int = 1,
    threads: int = 0,
    shard: Shard | None = None,
    overwrite: bool = False,
    progress: Callable[[str, Any], None] | None = None,
) -> PreprocessResult:
    """Process ``plugin``'s data set from ``raw_root`` into ``out`` (resuming if possible).

    ``progress(event, payload)`` receives ``("start", {"total", "done"})``, ``("begin", subject id)``
    when a subject starts and ``("subject", SubjectResult)`` when it ends.
    Without a shard (or with shard N/N finished by the others) the outputs are merged at the end.
    ``threads``: threads of each worker (0: the cores shared out among the workers, so that
    threads × workers never exceed them); the images do not depend on it, nor on ``workers``.
    """
    from sd_core.runs.lock import folder_lock

    params = _checked_parameters(plugin, prep, channels, options, split_file)
    layout.check_output_safe(out, raw_root)
    subjects = _discover(plugin, raw_root, options)  # before deleting anything with --overwrite
    mine = shard.take(subjects) if shard else subjects
    # one run per output (shards of one job side by side, each shard once): sd_core.runs.lock
    with folder_lock(out, shard=f"{shard.index}-of-{shard.count}" if shard else ""):
        if shard is None:  # the only writer: a killed merge's temporaries can go too
            for folder in (out, layout.state_dir(out), *(out / s for s in SPLIT_ORDER)):
                layout.remove_stale_temporaries(folder)
        if overwrite:
            _clear_for_overwrite(out, raw_root, shard, mine, subjects, params)
        started, params = _resume_check(out, params, overwrite)
        assignment = _assignment(out, raw_root, subjects, params, split_file, started)
        result = _run_subjects(plugin, out, mine, assignment, params, options, workers, threads, progress)
        if shard is None or _all_states_present(out, assignment):
            merge_result = merge_dataset(plugin, out)
            result.merged = True
            result.images = merge_result
    return result


def _checked_parameters(plugin: DatasetPlugin, prep: Mapping[str, Any], channels: list[str],
                        options: Mapping[str, Any], split_file: Path | None) -> dict[str, Any]:
    """The run's parameters; impossible sizes are refused before any work starts."""
    from sd_core.runs.resources import check_memory
    from sd_core.spectrogram import plan_spectrogram

    params = run_parameters(plugin, prep, channels, options, split_file)
    plan_spectrogram(len(channels), params["nsamps"], params["resolution"], params["bins"])
    k = params["resolution"] - 1  # log bins: four float64 K x K bases, float32 work of 2048 frames
    check_memory(32.0 * k * k + 32.0 * 2048 * k, f"resolution {params['resolution']}")
    return params


def _clear_for_overwrite(out: Path, raw_root: Path, shard: Shard | None, mine: list[Subject],
                         subjects: list[Subject], params: Mapping[str, Any]) -> None:
    """``--overwrite``: remove this shard's subjects (with ``--shard``), else the whole run."""
    if shard is not None:
        _clear_shard(out, raw_root, [s.id for s in mine], params, [s.id for s in subjects])
    else:
        layout.clear_output(out, raw_root)


def _resume_check(out: Path, params: dict[str, Any], overwrite: bool) -> tuple[dict | None, dict[str, Any]]:
    """The run begun in ``out`` (None if none) and the parameters to go on with: a run begun with
    other parameters is refused, and a new one must find nothing in its way."""
    ppath = layout.params_path(out)
    started = layout.read_json(ppath) if ppath.is_file() else None
    if started is not None and isinstance(started.get("parameters"), dict):
        params = resumed_parameters(started["parameters"], params)
        if "png" not in started["parameters"] and with_png(started["parameters"]) == params:
            started["parameters"] = params  # begun by an sd that did not record the encoder
            layout.write_json(ppath, started)
    if started is not None and started.get("parameters") != params:
        diff = "; ".join(differences(started.get("parameters", {}), params))
        raise SdError(
            f"{out} holds output made with other parameters ({diff}); rerun with --overwrite "
            "to replace it (only files sd wrote are deleted), or choose another output folder"
        )
    if started is None:
        _check_fresh_output(out, overwrite)
    return started, params


def _assignment(out: Path, raw_root: Path, subjects: list[Subject], params: Mapping[str, Any],
                split_file: Path | None, started: dict | None) -> dict[str, str]:
    """Subject id → split: a new run's is recorded, a resumed run keeps its own (which must
    name the same subjects)."""
    ids = [s.id for s in subjects]
    if split_file is not None:
        assignment = read_split_file(split_file, ids)
    else:
        assignment = assign_splits(ids, params["splits"], params["seed"], _strata(subjects))

    if started is not None:
        changed = sorted(set(started["splits"]) ^ set(assignment))
        if changed:
            raise SdError(
                f"the subjects under {raw_root} changed since {out} was started "
                f"({', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}); use --overwrite"
            )
        assignment = started["splits"]  # the assignment never changes on resume
    else:
        layout.write_json(layout.params_path(out), {"parameters": params, "splits": assignment})
    return assignment


def _run_subjects(plugin: DatasetPlugin, out: Path, mine: list[Subject], assignment: Mapping[str, str],
                  params: Mapping[str, Any], options: Mapping[str, Any], workers: int, threads: int,
                  progress: Callable[[str, Any], None] | None) -> PreprocessResult:
    """Process this run's subjects not done yet (here or in worker processes), reporting progress."""
    result = PreprocessResult(plugin.name, out, subjects=len(mine))
    todo = [s for s in mine if not _subject_done(out, s.id)]
    result.skipped = len(mine) - len(todo)
    if progress:
        progress("start", {"total": len(mine), "done": result.skipped})

    jobs = [SubjectJob(plugin, s, assignment[s.id], out, params, dict(options)) for s in todo]
    _remove_stale_temporaries(out, jobs)  # once, before any worker starts
    for res in _run_jobs(jobs, workers, progress, threads):
        result.results.append(res)
        if progress:
            progress("subject", res)
    result.results.sort(key=lambda r: r.subject)
    return result


def _check_fresh_output(out: Path, overwrite: bool) -> None:
    """A new run writes the metadata files and the split folders: refuse what is in the way."""
    manifest = layout.manifest_of(out)
    for rel in (*layout.METADATA_FILES, *layout.SPLIT_METADATA_FILES):
        manifest.check(rel)  # a user's metadata.csv is never replaced
    if not overwrite:
        present = [out / s for s in SPLIT_ORDER if (out / s).exists()]
        if present:
            raise SdError(f"{present[0]} exists but {out} holds no run sd can resume; choose an empty "
                          "output folder, or pass --overwrite to write beside what is there "
                          "(sd deletes only files it wrote)")


def _clear_shard(out: Path, raw_root: Path, subjects: list[str], params: Mapping[str, Any],
                 everyone: list[str]) -> None:
    """``--overwrite --shard K/N``: remove this shard's subjects only (the others stay). Where the
    folder was made with other parameters, or from another set of subjects (``everyone``: the
    subjects under ``raw_root`` now), the whole run starts again, unless other shards' subjects
    are there: they would mix two runs."""
    ppath = layout.params_path(out)
    run = layout.read_json(ppath) if ppath.is_file() else None
    started = run.get("parameters") if isinstance(run, dict) else None
    other_params = isinstance(started, dict) and with_png(started) != resumed_parameters(started, params)
    other_subjects = isinstance(run, dict) and set(run.get("splits") or ()) != set(everyone)
    if other_params or other_subjects:
        others = sorted(set(layout.owned_subjects(out)) - set(subjects))
        if others:
            what = "with other parameters" if other_params else f"from other subjects than those under {raw_root}"
            raise SdError(
                f"{out} holds subjects of other shards made {what} "
                f"({', '.join(others[:5])}{' ...' if len(others) > 5 else ''}); --overwrite with --shard "
                "replaces only this shard's subjects: run `sd preprocess --overwrite` without --shard "
                "once, or keep the parameters and the subjects")
        layout.clear_output(out, raw_root)
        return
    layout.clear_subjects(out, subjects)


def _remove_stale_temporaries(out: Path, jobs: list[SubjectJob]) -> None:
    layout.remove_stale_temporaries(layout.state_dir(out) / "subjects")
    for job in jobs:
        layout.remove_stale_temporaries(out / job.split / job.subject.id)


def _run_jobs(jobs: list[SubjectJob], workers: int, progress, threads: int = 0) -> Iterator[SubjectResult]:
    """Results of the jobs as they finish: in this process, or in at most ``workers`` processes
    with no more jobs handed out than there are workers (so "begin" means a subject started).

    A worker that raises gives its subject a failed state with the real error. A worker that
    dies (a signal, the out-of-memory killer) breaks the pool: the subjects it held are retried
    once each, alone in a fresh process, and reported as failed if that process dies too."""
    from sd_core.spectrogram.threads import thread_limit

    if workers <= 1 or len(jobs) <= 1:
        from sd_core.preprocess.reading import ReadAhead

        # BLAS on one thread: the engine's own threads share the cores (spinning BLAS threads
        # cost a third more CPU for nothing)
        with thread_limit(threads or None, blas=1), ReadAhead() as reader:
            for i, job in enumerate(jobs):
                if progress:
                    progress("begin", job.subject.id)
                yield _in_process(job, reader, jobs[i + 1] if i + 1 < len(jobs) else None)
        return
    from sd_core.plugins.picklable import check_picklable

    check_picklable(jobs[0].plugin, [job.subject for job in jobs])
    queue = list(reversed(jobs))
    retry: list[SubjectJob] = []
    while queue:
        with _pool(min(workers, len(queue)), threads) as pool:
            pending: dict[Any, SubjectJob] = {}
            broken = False
            while (queue and not broken) or pending:
                while queue and not broken and len(pending) < workers:
                    job = queue.pop()
                    pending[pool.submit(process_subject, job)] = job
                    if progress:
                        progress("begin", job.subject.id)
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    outcome = _outcome(fut, job)
                    if outcome is None:
                        broken = True
                        retry.append(job)
                    else:
                        yield outcome
    for job in retry:  # alone, so that a subject that kills its worker is known for sure
        with _pool(1, threads) as pool:
            outcome = _outcome(pool.submit(process_subject, job), job)
        yield outcome if outcome is not None else record_failure(
            job, "its worker process died twice (killed by a signal, or out of memory)")


def _outcome(fut, job: SubjectJob) -> SubjectResult | None:
    """The result of a finished future; None when the worker process died."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return fut.result()
    except BrokenProcessPool:
        return None
    except BaseException as exc:  # raised in the worker outside a recording (writing its state, say)
        import traceback

        if is_resource_fault(exc):  # a full disk, a read-only folder: stop the run
            raise
        return record_failure(job, f"worker failed ({describe_error(exc)})",
                              "".join(traceback.format_exception(exc)))


def _in_process(job: SubjectJob, reader=None, following: SubjectJob | None = None) -> SubjectResult:
    try:
        return process_subject(job, reader, following)
    except (Exception, SystemExit) as exc:
        import traceback

        if is_resource_fault(exc):  # a full disk, a read-only folder: stop the run
            raise
        return record_failure(job, f"failed ({describe_error(exc)})", "".join(traceback.format_exception(exc)))


def _all_states_present(out: Path, assignment: Mapping[str, str]) -> bool:
    return all(layout.subject_state_path(out, s).is_file() for s in assignment)
