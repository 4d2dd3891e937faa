"""Running preprocessing for one data set: discovery, splits, shards, workers, resume, merge."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from sd_core.dataset import DatasetPlugin, Subject
from sd_core.errors import DatasetError, SdError
from sd_core.io import atomic_write_text
from sd_core.preprocess import layout
from sd_core.preprocess.params import differences, package_versions, run_parameters
from sd_core.preprocess.subject import SubjectJob, SubjectResult, process_subject
from sd_core.splits import SPLIT_ORDER, assign_splits, read_split_file


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


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers start clean (no inherited threads or open files from the parent)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def preprocess_dataset(
    plugin: DatasetPlugin,
    raw_root: Path,
    out: Path,
    prep: Mapping[str, Any],
    channels: list[str],
    options: Mapping[str, Any],
    split_file: Path | None = None,
    workers: int = 1,
    shard: Shard | None = None,
    overwrite: bool = False,
    progress: Callable[[str, Any], None] | None = None,
) -> PreprocessResult:
    """Process ``plugin``'s data set from ``raw_root`` into ``out`` (resuming if possible).

    ``progress(event, payload)`` receives ``("start", {"total", "done"})``, ``("begin", subject id)``
    when a subject starts and ``("subject", SubjectResult)`` when it ends.
    Without a shard (or with shard N/N finished by the others) the outputs are merged at the end.
    """
    from sd_core.spectrogram import plan_spectrogram

    params = run_parameters(plugin.name, prep, channels, options, split_file)
    # refuse impossible sizes before any work starts
    plan_spectrogram(len(channels), params["nsamps"], params["resolution"], params["bins"])

    layout.check_output_safe(out, raw_root)
    subjects = _discover(plugin, raw_root, options)  # before deleting anything with --overwrite
    if overwrite:
        layout.clear_output(out, raw_root)
    ppath = layout.params_path(out)
    started = layout.read_json(ppath) if ppath.is_file() else None
    if started is not None and started.get("parameters") != params:
        diff = "; ".join(differences(started.get("parameters", {}), params))
        raise SdError(
            f"{out} holds output made with other parameters ({diff}); rerun with --overwrite "
            "to replace it, or choose another output folder"
        )
    if started is None and ((out / "preprocess.json").exists() or any((out / s).exists() for s in SPLIT_ORDER)):
        raise SdError(f"{out} holds output that sd cannot match to these parameters; use --overwrite")

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
        layout.write_json(ppath, {"parameters": params, "splits": assignment})

    mine = shard.take(subjects) if shard else subjects
    result = PreprocessResult(plugin.name, out, subjects=len(mine))
    todo = [s for s in mine if not _subject_done(out, s.id)]
    result.skipped = len(mine) - len(todo)
    if progress:
        progress("start", {"total": len(mine), "done": result.skipped})

    jobs = [SubjectJob(plugin, s, assignment[s.id], out, params, dict(options)) for s in todo]
    for res in _run_jobs(jobs, workers, progress):
        result.results.append(res)
        if progress:
            progress("subject", res)
    result.results.sort(key=lambda r: r.subject)

    if shard is None or _all_states_present(out, assignment):
        merge_result = merge_dataset(plugin, out)
        result.merged = True
        result.images = merge_result
    return result


def _run_jobs(jobs: list[SubjectJob], workers: int, progress) -> Iterator[SubjectResult]:
    """Results of the jobs as they finish: in this process, or in at most ``workers`` processes
    with no more jobs handed out than there are workers (so "begin" means a subject started)."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            if progress:
                progress("begin", job.subject.id)
            yield process_subject(job)
        return
    queue = list(reversed(jobs))
    with _pool(min(workers, len(jobs))) as pool:
        pending: dict[Any, SubjectJob] = {}
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop()
                pending[pool.submit(process_subject, job)] = job
                if progress:
                    progress("begin", job.subject.id)
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    yield fut.result()
                except Exception as exc:  # a worker that died: report the subject, go on
                    sid = job.subject.id
                    yield SubjectResult(sid, job.split, "failed", 0,
                                        [f"{sid}: worker failed ({type(exc).__name__}: {exc})"])


def _all_states_present(out: Path, assignment: Mapping[str, str]) -> bool:
    return all(layout.subject_state_path(out, s).is_file() for s in assignment)


def merge_dataset(plugin: DatasetPlugin, out: Path) -> dict[str, int]:
    """Assemble the metadata CSVs and ``preprocess.json`` from the per-subject states.

    Used at the end of every unsharded run and by ``sd preprocess --merge`` once all shards
    (possibly run on other machines, their outputs copied into ``out``) have finished.
    Returns the number of images per split.
    """
    ppath = layout.params_path(out)
    if not ppath.is_file():
        raise SdError(f"{out} holds no preprocessing run to merge (no {ppath.relative_to(out)})")
    run = layout.read_json(ppath)
    assignment: dict[str, str] = run["splits"]
    missing = [s for s in sorted(assignment) if not layout.subject_state_path(out, s).is_file()]
    if missing:
        raise SdError(
            f"cannot merge {out}: {len(missing)} subject(s) not processed yet "
            f"({', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}); run the remaining shards first"
        )
    states = {s: layout.read_json(layout.subject_state_path(out, s)) for s in sorted(assignment)}
    rows_by_split: dict[str, list[dict]] = {s: [] for s in SPLIT_ORDER}
    for sid, state in states.items():
        rows_by_split[assignment[sid]].extend(state["rows"])
    all_rows = [r for s in SPLIT_ORDER for r in rows_by_split[s]]
    columns = layout.metadata_columns(plugin.columns, all_rows)
    requested = [s for s in SPLIT_ORDER if run["parameters"]["splits"].get(s, 0) > 0]
    for split in requested:
        atomic_write_text(out / f"{split}-metadata.csv", layout.csv_text(columns, rows_by_split[split]))
    atomic_write_text(out / "metadata.csv", layout.csv_text(columns, all_rows))
    counts = {s: len(rows_by_split[s]) for s in requested}
    layout.write_json(out / "preprocess.json", {
        "dataset": plugin.name,
        "parameters": run["parameters"],
        "versions": package_versions(plugin),
        "images": counts,
        "columns": columns,
        "subjects": {
            sid: {"split": assignment[sid], "status": st["status"], "images": st["images"],
                  "errors": st["errors"], "notes": st["notes"]}
            for sid, st in states.items()
        },
    })
    return counts

