"""``sd train cfg.toml`` and ``sd evaluate-run RUN``."""

from __future__ import annotations

from pathlib import Path

import click

from sd_core.runs.console import JSON_OPTION, console, err_console, print_json


def default_run_dir(cfg: Path, output_dir: str, base: Path) -> Path:
    if output_dir:
        p = Path(output_dir).expanduser()
        return p if p.is_absolute() else (base / p)
    return Path.cwd() / "runs" / cfg.stem


@click.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: [training] output_dir, else runs/<experiment name>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in the run folder.")
@click.option("--json", "as_json", **JSON_OPTION)
@click.pass_context
def train(ctx: click.Context, experiment: str, out: str | None, resume: bool, as_json: bool) -> None:
    """Train a multi-task classifier described by the EXPERIMENT file ([data], [model], [training]).

    Runs in one process, or in several under `accelerate launch` / `torchrun`. The run folder
    gets checkpoints (safetensors), history.json, metrics.json, curves.png and the resolved
    config; at the end the best checkpoint is tested and shown as a table.
    """
    from sd_core.cli import load_ctx_config
    from sd_core.plugins.registry import get_registry
    from sd_core.training.loop import check_runnable
    from sd_core.training.loop import train as run_training
    from sd_core.training.report import TrainProgress, metrics_table
    from sd_core.training.settings import load_train_experiment

    registry = get_registry()
    exp = load_train_experiment(experiment, registry)
    check_runnable(exp)
    project = load_ctx_config(ctx)
    run = Path(out).resolve() if out else default_run_dir(exp.source, exp["training"]["output_dir"], exp.base)
    c = err_console() if as_json else console()
    res = run_training(exp, registry, project, run, resume=resume, progress=TrainProgress(c))
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    if as_json:
        print_json({"run": run, "best_checkpoint": res.best, "steps": res.steps, "val": res.val,
                    "test": res.test})
        return
    c.print(metrics_table(f"sd train: best checkpoint {res.best} (after {res.steps} steps)",
                          {k: v for k, v in (("val", res.val), ("test", res.test)) if v}, registry))
    c.print(f"run folder: {run}  (curves.png, metrics.json, checkpoints/)")


@click.command("evaluate-run")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Processed folder(s) to read instead of the run's own (e.g. sd generate output).")
@click.option("--checkpoint", default="", help="Checkpoint name (default: the run's best).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--json", "as_json", **JSON_OPTION)
def evaluate_run(run: str, split: str, data_dirs: tuple[str, ...], checkpoint: str, batch_size: int,
                 as_json: bool) -> None:
    """Evaluate a trained classifier RUN on a split; writes eval-<split>.json and predictions."""
    from sd_core.plugins.registry import get_registry
    from sd_core.training.report import metrics_table
    from sd_core.training.saved import evaluate_run as run_eval

    registry = get_registry()
    res = run_eval(Path(run), registry, split, [Path(d) for d in data_dirs], checkpoint, batch_size)
    if as_json:
        print_json(res)
        return
    c = console()
    tables = {split: res["metrics"], **{f"{split} {ds}": m for ds, m in res["by_dataset"].items()}}
    c.print(metrics_table(f"{run}: checkpoint {res['checkpoint']}", tables, registry))
