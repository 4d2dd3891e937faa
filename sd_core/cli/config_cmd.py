"""``sd config show`` and ``sd init``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sd_core.cli import load_ctx_config
from sd_core.errors import SdError


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved configuration (file values over built-in defaults)."""
    from sd_core.config.toml import dumps

    cfg = load_ctx_config(ctx)
    data = cfg.as_dict()
    if as_json:
        click.echo(json.dumps({"source": str(cfg.source) if cfg.source else None, **data}, indent=2))
        return
    click.echo(f"# resolved from {cfg.source or 'built-in defaults'}")
    click.echo(dumps(data).rstrip())


#: experiment kinds `sd init --experiment` writes: kind → "module:function" returning the text
EXPERIMENT_STARTERS = {
    "train": "sd_core.training.settings:starter",
    "diffusion": "sd_core.diffusion.config:starter",
    "meta": "sd_core.meta.config:starter",
}


@click.command()
@click.argument("path", type=click.Path(dir_okay=False), default=None, required=False)
@click.option("--experiment", type=click.Choice(sorted(EXPERIMENT_STARTERS)), default=None,
              help="Write a commented experiment file instead (default PATH: <kind>.toml).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(path: str | None, experiment: str | None, force: bool) -> None:
    """Write a commented starter sd.toml (to PATH, default ./sd.toml), or with --experiment a
    starter experiment file for `sd train` / `sd diffusion train` / `sd meta build`."""
    import importlib

    from sd_core.config.toml import starter_text
    from sd_core.plugins.registry import get_registry
    from sd_core.runs.files import atomic_write_text

    target = Path(path or (f"{experiment}.toml" if experiment else "sd.toml"))
    if target.exists() and not force:
        raise SdError(f"{target} exists; use --force to replace it")
    if experiment:
        module, attr = EXPERIMENT_STARTERS[experiment].split(":")
        text = getattr(importlib.import_module(module), attr)(get_registry())
    else:
        text = starter_text(get_registry().datasets)
    atomic_write_text(target, text)
    click.echo(f"wrote {target}")
