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
    from sd_core.config import dumps

    cfg = load_ctx_config(ctx)
    data = cfg.as_dict()
    if as_json:
        click.echo(json.dumps({"source": str(cfg.source) if cfg.source else None, **data}, indent=2))
        return
    click.echo(f"# resolved from {cfg.source or 'built-in defaults'}")
    click.echo(dumps(data).rstrip())


@click.command()
@click.argument("path", type=click.Path(dir_okay=False), default="sd.toml")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(path: str, force: bool) -> None:
    """Write a commented starter sd.toml (to PATH, default ./sd.toml)."""
    from sd_core.config import starter_text
    from sd_core.io import atomic_write_text
    from sd_core.plugins import get_registry

    target = Path(path)
    if target.exists() and not force:
        raise SdError(f"{target} exists; use --force to replace it")
    atomic_write_text(target, starter_text(get_registry().datasets))
    click.echo(f"wrote {target}")
