"""The ``sd`` command line.

Commands live in their own modules and are imported only when run (see ``COMMANDS``), so
``sd --help`` and the listings stay light. Plugins add commands through ``sd_cli_commands``.
"""

from __future__ import annotations

import importlib
import sys

import click

from sd_core import __version__
from sd_core.errors import SdError

#: command name → "module:attribute", imported on use
COMMANDS = {
    "plugins": "sd_core.cli.listing:plugins",
    "datasets": "sd_core.cli.listing:datasets",
    "tasks": "sd_core.cli.listing:tasks",
    "backbones": "sd_core.cli.listing:backbones",
    "metrics": "sd_core.cli.listing:metrics",
    "config": "sd_core.cli.config_cmd:config",
    "init": "sd_core.cli.config_cmd:init",
    "demo": "sd_core.cli.demo:demo",
    "preprocess": "sd_core.cli.preprocess:preprocess",
    "train": "sd_core.cli.train:train",
    "evaluate-run": "sd_core.cli.train:evaluate_run",
    "diffusion": "sd_core.cli.diffusion:diffusion",
    "generate": "sd_core.cli.generate:generate",
    "evaluate": "sd_core.cli.evaluate:evaluate",
    "meta": "sd_core.cli.meta:meta",
}

#: one-line help per command, so that `sd --help` need not import the command modules
SUMMARIES = {
    "plugins": "List installed plugins, their versions and what they provide.",
    "datasets": "List data sets: plugin, raw folder, processed output.",
    "tasks": "List the prediction tasks of each data set.",
    "backbones": "List classifier backbones and their options.",
    "metrics": "List evaluation metrics.",
    "config": "Show the resolved configuration.",
    "init": "Write a commented starter sd.toml.",
    "demo": "Run every stage on embedded synthetic data.",
    "preprocess": "Turn raw recordings into spectrogram PNGs and metadata (resumable).",
    "train": "Train a multi-task classifier from an experiment file (resumable).",
    "evaluate-run": "Evaluate a trained classifier run on a split of real or generated data.",
    "diffusion": "Train conditional diffusion models (sd diffusion train cfg.toml).",
    "generate": "Generate labelled spectrograms with a trained diffusion model.",
    "evaluate": "Judge generated data against real: fidelity, per class, utility, memorisation.",
    "meta": "Weighted mixes of data sets with a dataset card (sd meta build cfg.toml).",
}


def fail(message: str, code: int = 1) -> None:
    """Print a user-facing error in one line and exit."""
    from rich.markup import escape

    from sd_core.runs.console import err_console

    err_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(code)


class SdGroup(click.Group):
    """A click group with lazily imported commands, plugin commands and friendly errors."""

    def plugin_commands(self) -> dict[str, click.Command]:
        """Commands plugins add, resolved once per registry. A command whose name is taken is
        ignored with a warning, and its plugin is shown as failed by ``sd plugins``."""
        from sd_core.plugins.registry import get_registry

        reg = get_registry()
        cached = getattr(self, "_plugin_cmds", None)
        if cached is not None and cached[0] is reg:
            return cached[1]
        out: dict[str, click.Command] = {}
        owners: dict[str, str] = {}
        for plugin, cmd in reg.cli_commands:
            if cmd.name in COMMANDS or cmd.name in self.commands or cmd.name in out:
                by = f"by {owners[cmd.name]!r}" if cmd.name in owners else "by sd"
                reg.mark_failed(plugin, f"sd_cli_commands: command {cmd.name!r} exists already ({by}); ignored")
                sys.stderr.write(
                    f"warning: plugin {plugin!r} adds command {cmd.name!r}, which exists ({by}); ignored\n"
                )
                continue
            out[cmd.name] = cmd
            owners[cmd.name] = plugin
        self._plugin_cmds = (reg, out)
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return self.plugin_commands().get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        plugin_cmds = self.plugin_commands()
        for name in self.list_commands(ctx):
            if name in SUMMARIES:
                rows.append((name, SUMMARIES[name]))
            else:
                cmd = self.commands.get(name) or plugin_cmds.get(name)
                rows.append((name, cmd.get_short_help_str(60) if cmd else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SdError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except OSError as exc:
            from sd_core.runs.files import RESOURCE_FAULTS

            reason = RESOURCE_FAULTS.get(exc.errno)
            if reason is None:
                raise
            fail(f"{exc.filename or exc.filename2 or 'a file'}: {reason}; what was finished before is kept", 1)


@click.group(cls=SdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sd")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Project file (default: $SD_CONFIG, else ./sd.toml, else built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also say what each step did (a line per subject, per evaluation).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output: results, warnings and errors only.")
@click.option("--debug", is_flag=True, help="Print tracebacks of plugin bugs and failed workers (as SD_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool, quiet: bool, debug: bool) -> None:
    """sd: EEG recordings to spectrogram images, classifiers and conditional diffusion models.

    Shell completion: eval "$(_SD_COMPLETE=bash_source sd)" (zsh_source, fish_source).
    """
    from sd_core.runs.progress import VERBOSITY

    if verbose and quiet:
        raise click.UsageError("-v and -q exclude each other")
    VERBOSITY["level"] = -1 if quiet else (1 if verbose else 0)
    if debug:
        import os

        os.environ["SD_DEBUG"] = "1"
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def load_ctx_config(ctx: click.Context):
    """The configuration for this invocation (loaded once)."""
    from sd_core.config.project import load_config

    root = ctx.find_root()
    root.ensure_object(dict)
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj.get("config_path"))
    return root.obj["config"]
