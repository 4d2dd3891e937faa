"""Listing commands: plugins, datasets, tasks, backbones, metrics. Light: no torch/mne imports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from sd_core.cli import load_ctx_config
from sd_core.plugins.checks import HOOK_ITEM_TYPES
from sd_core.plugins.registry import get_registry
from sd_core.runs.console import console, table

SPLITS = ("train", "val", "test")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--requirements", is_flag=True, help="Print name==version lines (pip requirements).")
def plugins(as_json: bool, requirements: bool) -> None:
    """List installed plugins, their versions and what they provide."""
    from sd_core.cli import main

    reg = get_registry()
    for hook in HOOK_ITEM_TYPES:
        reg.collect(hook)  # fills in `provides`, records plugins failing in a hook
    reg.check_clashes()  # names two plugins share: both shown as failed
    reg.invalid_contributions()  # tasks reading columns their data set lacks, bad preprocess_defaults
    main.plugin_commands()  # commands whose name is taken: shown as failed
    infos = list(reg.plugins.values())
    if requirements:
        for info in infos:
            if info.status != "failed":
                click.echo(f"{info.name}=={info.version}")
        return
    if as_json:
        click.echo(json.dumps([info.__dict__ for info in infos], indent=2))
        return
    t = table("sd plugins", ["plugin", "version", "status", "provides", "module / error"])
    for info in infos:
        provides = "; ".join(
            f"{len(v)} {k}" if k == "tasks" else f"{k}: {', '.join(v)}" for k, v in info.provides.items()
        )
        status = {"failed": "[red]failed[/]", "builtin": "built-in"}.get(info.status, "[green]loaded[/]")
        t.add_row(info.name, info.version, status, provides, info.error or info.module)
    console().print(t)


def count_rows(path: Path) -> int | None:
    """Data rows of a CSV file, or None when it does not exist."""
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def datasets(ctx: click.Context, as_json: bool) -> None:
    """List data sets: plugin, raw folder, whether raw data is found, processed images per split."""
    cfg = load_ctx_config(ctx)
    reg = get_registry()
    rows = []
    for name, plugin in reg.datasets.items():
        raw = cfg.raw_root(name)
        out = cfg.output_dir(name)
        counts = {s: count_rows(out / f"{s}-metadata.csv") for s in SPLITS}
        rows.append({
            "dataset": name,
            "plugin": reg.owner("sd_datasets", name),
            "title": plugin.title,
            "raw_root": str(raw),
            "raw_found": bool(plugin.raw_found(raw)) if raw.exists() else False,
            "output": str(out),
            "processed": any(c is not None for c in counts.values()),
            "images": {s: c for s, c in counts.items() if c is not None},
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = table("sd datasets", ["data set", "plugin", "raw root", "raw", "processed", "images per split"])
    for r in rows:
        images = ", ".join(f"{s} {c}" for s, c in r["images"].items()) or "-"
        t.add_row(
            r["dataset"], r["plugin"], r["raw_root"],
            "[green]found[/]" if r["raw_found"] else "[yellow]missing[/]",
            "[green]yes[/]" if r["processed"] else "no", images,
        )
    console().print(t)
    if not rows:
        console().print("No data set plugins are installed (pip install sd-math, for example).")


@click.command()
@click.option("--dataset", "-d", "dataset", default=None, help="Only this data set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tasks(dataset: str | None, as_json: bool) -> None:
    """List the prediction tasks of each data set (name, type, classes, metadata columns read)."""
    reg = get_registry()
    specs = reg.tasks_of(dataset) if dataset else list(reg.tasks.values())
    if as_json:
        click.echo(json.dumps([
            {"dataset": t.dataset, "task": t.name, "kind": t.kind, "classes": list(t.classes),
             "columns": list(t.columns), "plugin": reg.owner("sd_tasks", (t.dataset, t.name)),
             "description": t.description} for t in specs], indent=2))
        return
    t = table("sd tasks", ["data set", "task", "type", "classes", "columns", "plugin", "description"])
    for s in specs:
        t.add_row(s.dataset, s.name, s.kind, ", ".join(s.classes) or "-", " + ".join(s.columns),
                  reg.owner("sd_tasks", (s.dataset, s.name)), s.description)
    console().print(t)


@click.command()
def backbones() -> None:
    """List classifier backbones and their options."""
    reg = get_registry()
    t = table("sd backbones", ["backbone", "plugin", "description", "options (default)"])
    for name, spec in reg.backbones.items():
        opts = "\n".join(f"{k} = {o.default!r}: {o.help}" for k, o in spec.options.items())
        t.add_row(name, reg.owner("sd_backbones", name), spec.description, opts or "-")
    console().print(t)


@click.command()
def metrics() -> None:
    """List evaluation metrics: per task, and the set metrics and feature spaces of sd evaluate."""
    reg = get_registry()
    t = table("sd metrics", ["metric", "task type", "better", "plugin", "description"])
    for name, spec in reg.metrics.items():
        t.add_row(name, spec.kind, "higher" if spec.higher_is_better else "lower",
                  reg.owner("sd_metrics", name), spec.description)
    console().print(t)
    t = table("sd evaluate: set metrics (real set vs generated set)", ["metric", "outputs", "better", "plugin",
                                                                       "description"])
    for name, spec in reg.set_metrics.items():
        t.add_row(name, ", ".join(spec.outputs), "higher" if spec.higher_is_better else "lower",
                  reg.owner("sd_set_metrics", name), spec.description)
    console().print(t)
    t = table("sd evaluate: feature spaces", ["name", "plugin", "description"])
    for name, spec in reg.feature_extractors.items():
        t.add_row(name, reg.owner("sd_feature_extractors", name), spec.description)
    console().print(t)
