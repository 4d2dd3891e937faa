"""``sd meta build cfg.toml`` and ``sd meta rebuild DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from sd_core.runs.console import console


@click.group()
def meta() -> None:
    """Meta data sets: weighted mixes of processed or generated sets (docs/meta.md)."""


def _report(plan, summary, out: Path) -> None:
    from sd_core.meta.plot import shares_table

    c = console()
    for split, diag in plan.diagnostics.items():
        c.print(shares_table(split, diag))
    rows = ", ".join(f"{s} {n}" for s, n in summary["rows"].items())
    placed = ", ".join(f"{summary[k]} {what}" for k, what in (("linked", "hard links"), ("reflinked", "reflinks"),
                                                              ("copied", "copies")) if summary.get(k))
    c.print(f"meta set: {out}  ({rows} rows; {placed or 'no images'})")
    c.print("  README.md (dataset card), meta.json (rebuild record)"
            + (", weights.png" if plan.diagnostics else ""))
    names = list(dict.fromkeys(d for comp in plan.components for d in comp.datasets))
    if names:
        import json

        where = json.dumps(str(out.resolve()))
        paths = ", ".join(f"{d} = {where}" for d in names)
        c.print(f"train on it: [data] datasets = {json.dumps(names)}, paths = {{ {paths} }}, "
                "balanced = false", markup=False)


@meta.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: [meta] out, else meta/<experiment name>).")
@click.option("--overwrite", is_flag=True, help="Replace a meta set there (only files sd wrote are deleted).")
@click.pass_context
def build(ctx: click.Context, experiment: str, out: str | None, overwrite: bool) -> None:
    """Combine processed or generated sets, weight them by data set × class and write the
    weighted set (per-split folders and metadata, weights.png, a Hugging Face dataset card)."""
    from sd_core.cli import load_ctx_config
    from sd_core.meta.build import build_from_config
    from sd_core.meta.components import resolve_components
    from sd_core.meta.config import load_meta_experiment, out_dir
    from sd_core.plugins.registry import get_registry

    registry = get_registry()
    exp = load_meta_experiment(experiment)
    project = load_ctx_config(ctx)
    where = f"{exp.source}: [meta]"
    comps = resolve_components(exp["meta"]["components"], exp.base, project, registry, f"{where} components")
    target = out_dir(exp, out)
    plan, summary = build_from_config(exp["meta"], comps, target, registry, overwrite, where=where)
    _report(plan, summary, target)


@meta.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Build into this folder instead of FOLDER itself.")
@click.option("--overwrite", is_flag=True, help="Replace a meta set in --out (only files sd wrote).")
def rebuild(folder: str, out: str | None, overwrite: bool) -> None:
    """Build a meta set again from its meta.json (same components and configuration: the same
    files, byte for byte); refuses when a component changed since."""
    from sd_core.meta.build import rebuild as run_rebuild
    from sd_core.plugins.registry import get_registry

    target = Path(out) if out else Path(folder)
    plan, summary = run_rebuild(Path(folder), target, get_registry(), overwrite)
    _report(plan, summary, target)
