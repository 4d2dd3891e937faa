"""``sd evaluate REAL GEN``: how close generated data is to real data, and whether it helps."""

from __future__ import annotations

from pathlib import Path

import click

from sd_core.runs.console import console


@click.command()
@click.argument("real", type=click.Path(file_okay=False))
@click.argument("gen", type=click.Path(file_okay=False))
@click.option("--classifier", "classifier_run", type=click.Path(file_okay=False), default=None,
              help="A run of `sd train` on REAL (default: train one on REAL's train split here).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: ./evaluation-<GEN folder name>).")
@click.option("--real-split", default="test", show_default=True, help="Split of REAL to compare with.")
@click.option("--task", "tasks", multiple=True,
              help="Classification task(s) to compare classes by (default: what GEN was conditioned on).")
@click.option("--features", "features", multiple=True, help="Only these feature spaces (default: all).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-images", type=int, default=2000, show_default=True, help="Cap on images per set.")
@click.option("--steps", type=int, default=150, show_default=True,
              help="Optimizer steps of each classifier trained here (the real classifier, utility runs).")
@click.option("--seeds", "utility_seeds", type=click.IntRange(1), default=3, show_default=True,
              help="Seeds of the utility runs.")
@click.option("--skip-utility", is_flag=True, help="Leave out TSTR / TRTS / augmentation (a quick look).")
@click.pass_context
def evaluate(ctx: click.Context, real: str, gen: str, classifier_run: str | None, out: str | None,
             real_split: str, tasks: tuple[str, ...], features: tuple[str, ...], seed: int, max_images: int,
             steps: int, utility_seeds: int, skip_utility: bool) -> None:
    """Judge a generated data set GEN against a real one REAL (both in the processed layout).

    Fidelity and diversity (FID, KID, precision/recall, density/coverage) in the embedding of a
    real-trained classifier, in band powers read from the images and in any feature space a
    plugin adds, each beside its real-vs-real floor, pooled and per class; the real classifier's
    accuracy on the generated labels; band-power differences with bootstrap intervals; train on
    synthetic / test on real and the reverse, and augmentation, over several seeds; a
    memorisation check. Writes OUT/evaluation.json and a self-contained OUT/report.html.
    """
    from sd_core.cli import load_ctx_config
    from sd_core.evaluate.report import terminal_tables, write_outputs
    from sd_core.evaluate.run import Options
    from sd_core.evaluate.run import evaluate as run_evaluation

    target = Path(out) if out else Path.cwd() / f"evaluation-{Path(gen).resolve().name}"
    opts = Options(real_split=real_split, tasks=tasks, classifier=Path(classifier_run) if classifier_run else None,
                   seed=seed, max_images=max_images, skip_utility=skip_utility, utility_seeds=utility_seeds,
                   steps=steps, features=features)
    c = console()
    ev = run_evaluation(Path(real), Path(gen), target, opts, project=load_ctx_config(ctx), console=c)
    paths = write_outputs(target.resolve(), ev)
    for t in terminal_tables(ev["result"]):
        c.print(t)
    c.print(f"report: {paths['html']}  ·  numbers: {paths['json']}")
