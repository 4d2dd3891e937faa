"""``sd preprocess``: raw recordings → spectrogram PNGs and metadata, per data set."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sd_core.cli import load_ctx_config
from sd_core.errors import ConfigError, SdError
from sd_core.runs.console import console, err_console, table


def _parse_splits(text: str) -> dict[str, float]:
    """``0.7,0.15,0.15`` or ``train=0.8,test=0.2``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--splits {text!r}: give fractions like 0.7,0.15,0.15 or train=0.8,test=0.2") from None
    if len(values) > 3:
        raise ConfigError(f"--splits {text!r}: at most three fractions (train, val, test)")
    return dict(zip(("train", "val", "test"), values))


#: the exit status of a run where some subjects failed or stayed partial and the others are done
INCOMPLETE_EXIT = 3


@click.command()
@click.option("--dataset", "-d", "datasets", multiple=True, help="Data set to process (repeatable).")
@click.option("--all", "all_datasets", is_flag=True, help="Process every installed data set.")
@click.option("--raw", type=click.Path(file_okay=False), help="Raw data folder (one data set only).")
@click.option("--output", type=click.Path(file_okay=False), help="Output folder (one data set only).")
@click.option("--fs", type=float, help="Target sampling rate in Hz.")
@click.option("--nsamps", type=int, help="Samples per window (after resampling).")
@click.option("--overlap", type=float, help="Overlap of consecutive windows (fraction, 0 ≤ x < 1).")
@click.option("--resolution", type=int, help="Image size R (R×R pixels).")
@click.option("--bins", type=click.Choice(["log", "linear"]), help="Frequency bins.")
@click.option("--splits", help="Subject fractions, e.g. 0.7,0.15,0.15 or train=0.8,test=0.2.")
@click.option("--seed", type=int, help="Seed of the subject split.")
@click.option("--workers", type=int, help="Worker processes (results are identical for any number).")
@click.option("--threads", type=int,
              help="Threads per worker (default: the cores shared out among the workers).")
@click.option("--shard", help="Process only shard K of N (K/N) of the subjects; merge afterwards.")
@click.option("--merge", is_flag=True, help="Assemble metadata from finished shards; process nothing.")
@click.option("--overwrite", is_flag=True,
              help="Replace output made with other parameters (only files sd wrote are deleted).")
@click.option("--debug", is_flag=True, envvar="SD_DEBUG",
              help="Print the tracebacks of plugin bugs and failed workers (also SD_DEBUG=1).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the results as JSON on stdout (progress goes to stderr).")
@click.pass_context
def preprocess(ctx, datasets, all_datasets, raw, output, fs, nsamps, overlap, resolution, bins,
               splits, seed, workers, threads, shard, merge, overwrite, debug, as_json):
    """Turn raw recordings into spectrogram PNGs and metadata CSVs (resumable).

    Defaults come from sd.toml ([preprocess] and [datasets.<name>]).

    Exit status: 0 when every subject is done, 3 when some subjects failed or stayed partial
    (the others are kept; the table says which), 1 on an error that stopped a data set.
    """
    from sd_core.config.schema import PREPROCESS, validate_table
    from sd_core.plugins.registry import get_registry
    from sd_core.preprocess.runner import Shard

    cfg = load_ctx_config(ctx)
    reg = get_registry()
    names = list(reg.datasets) if all_datasets else list(dict.fromkeys(datasets))
    if not names:
        raise SdError("name a data set with --dataset NAME (or use --all); see `sd datasets`")
    for n in names:
        reg.dataset(n)  # unknown names fail here, listing the installed ones
    if (raw or output) and len(names) != 1:
        raise SdError("--raw and --output apply to one data set; name exactly one --dataset")
    overrides = {k: v for k, v in dict(fs=fs, nsamps=nsamps, overlap=overlap, resolution=resolution,
                                       bins=bins, seed=seed, workers=workers,
                                       threads=threads).items() if v is not None}
    if splits:
        overrides["splits"] = _parse_splits(splits)
    validate_table("preprocess", overrides, PREPROCESS, "command line")
    shard_spec = Shard.parse(shard) if shard else None

    failures = incomplete = 0
    results: list[dict] = []
    for name in names:
        plugin = reg.dataset(name)
        raw_root = Path(raw).resolve() if raw else cfg.raw_root(name)
        out = Path(output).resolve() if output else cfg.output_dir(name)
        prep = {**cfg.preprocess_params(name), **overrides}
        try:
            if merge:
                from sd_core.preprocess.runner import merge_dataset

                counts = merge_dataset(plugin, out)
                if as_json:
                    results.append({"dataset": name, "out": str(out), "merged": True, "images": counts})
                else:
                    console().print(f"[bold]{name}[/]: merged into {out}: "
                                    + ", ".join(f"{s} {c}" for s, c in counts.items()))
                continue
            result = _run_one(plugin, raw_root, out, prep, cfg, name, shard_spec, overwrite)
        except SdError as exc:
            failures += 1
            from rich.markup import escape

            err_console().print(f"[bold red]error:[/] {name}: {escape(str(exc))}", soft_wrap=True)
            continue
        if as_json:
            results.append(_as_dict(result))
        else:
            _summary(result, debug)
        if result.faults or (result.subjects and len(result.failed_subjects) == result.subjects):
            failures += 1
        elif any(r.status in ("failed", "partial") for r in result.results):
            incomplete += 1
    if as_json:
        from sd_core.runs.console import print_json

        print_json(results)
    if failures:
        ctx.exit(1)
    if incomplete:  # scripts and SLURM jobs can tell "some subjects failed" from success
        ctx.exit(INCOMPLETE_EXIT)


def _run_one(plugin, raw_root, out, prep, cfg, name, shard, overwrite):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from sd_core.preprocess.runner import preprocess_dataset
    from sd_core.runs.progress import make_progress, verbosity

    progress = make_progress(err_console(), TextColumn("[bold]{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), label="preprocess", transient=False)
    tasks: dict[str, int] = {}
    overall = None

    def on_event(event, payload):
        nonlocal overall
        if event == "start":
            overall = progress.add_task(f"{name} subjects", total=payload["total"], completed=payload["done"])
        elif event == "begin":
            tasks[payload] = progress.add_task(f"  {payload}", total=1)
        elif event == "subject":
            tid = tasks.pop(payload.subject, None)
            if tid is not None:
                progress.remove_task(tid)
            progress.advance(overall)
            if verbosity() > 0:
                err_console().print(f"{name} {payload.subject}: {payload.status}, {payload.images} images",
                                    soft_wrap=True, highlight=False, markup=False)

    started = time.monotonic()
    with progress:
        result = preprocess_dataset(
            plugin, raw_root, out, prep, cfg.channels(name, plugin), cfg.dataset_options(name, plugin),
            split_file=cfg.split_file(name), workers=int(prep.get("workers", 1)),
            threads=int(prep.get("threads", 0)), shard=shard,
            overwrite=overwrite, progress=on_event,
        )
    result.seconds = time.monotonic() - started
    return result


def _as_dict(result) -> dict:
    by = {k: sum(r.status == k for r in result.results) for k in ("done", "partial", "failed")}
    return {"dataset": result.dataset, "out": str(result.out), "subjects": result.subjects,
            "resumed": result.skipped, **by, "images_this_run": sum(r.images for r in result.results),
            "merged": result.merged, "images": result.images, "seconds": round(result.seconds, 3),
            "errors": result.errors, "notes": [n for r in result.results for n in r.notes],
            "faults": [r.subject for r in result.faults]}


def _summary(result, debug: bool = False) -> None:
    from rich.markup import escape

    c = console()
    done = sum(r.status == "done" for r in result.results)
    partial = sum(r.status == "partial" for r in result.results)
    failed = sum(r.status == "failed" for r in result.results)
    t = table(f"{result.dataset} → {result.out}", ["subjects", "done", "resumed", "partial", "failed",
                                                   "images (this run)", "seconds"])
    t.add_row(str(result.subjects), str(done), str(result.skipped), str(partial), str(failed),
              str(sum(r.images for r in result.results)), f"{result.seconds:.1f}")
    c.print(t)
    if result.merged:
        c.print("images per split: " + ", ".join(f"{s} {n}" for s, n in result.images.items()))
    else:
        c.print("shard finished; once every shard has, run [bold]sd preprocess --merge[/] "
                f"--dataset {result.dataset}")
    for r in result.results:
        for e in r.errors:
            c.print(f"[red]{'failed' if r.fault else 'unreadable'}:[/] {escape(e)}", soft_wrap=True)
        if debug:
            for tb in r.tracebacks:
                err_console().print(escape(tb), soft_wrap=True, highlight=False)
    if result.faults and not debug:
        c.print("plugin bugs and worker failures: tracebacks are in preprocess.json "
                "(or rerun with --debug)", soft_wrap=True)
    for r in result.results:
        for n in r.notes:
            c.print(f"[yellow]note:[/] {escape(n)}", soft_wrap=True)
