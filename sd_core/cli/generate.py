"""``sd generate``: labelled synthetic spectrograms from a trained diffusion run."""

from __future__ import annotations

from pathlib import Path

import click

from sd_core.runs.console import JSON_OPTION, console, err_console, print_json, table


@click.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--n", "n", type=int, default=8, show_default=True,
              help="Images per --condition (or per combination with --balanced); without either, "
                   "the total, with labels drawn as often as in the training data.")
@click.option("--condition", "conditions", multiple=True,
              help="Labels to generate, e.g. gender=F,health=PD (repeatable). Conditions left out "
                   "are left to the model; age is drawn from matching training subjects.")
@click.option("--prompt", help="Free text every image is conditioned on instead of its caption (runs conditioned "
              "on captions: the stable-diffusion kind, or a text_encoder); without --condition the labels are "
              "left to the model.")
@click.option("--balanced", is_flag=True, help="The same number of images for every class combination.")
@click.option("--steps", type=int, default=25, show_default=True, help="Solver steps.")
@click.option("--scheduler", type=click.Choice(["dpm", "dpm-ode", "ddim", "ddpm"]), default="dpm",
              show_default=True, help="Sampler: DPM-Solver++ (stochastic; dpm-ode: deterministic), DDIM "
              "or ancestral DDPM.")
@click.option("--guidance", type=float, default=2.0, show_default=True,
              help="Classifier-free guidance scale (1 = conditional only, 0 = unconditional).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise and label draws.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True,
              help="Split the images are written to.")
@click.option("--dataset", help="Data set named in the rows (runs trained on several data sets).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per sampling batch.")
@click.option("--device", default=None, help="torch device (default: cuda if available, else cpu).")
@click.option("--overwrite", is_flag=True, help="Replace a data set already in --out.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--json", "as_json", **JSON_OPTION)
def generate(run, n, conditions, prompt, balanced, steps, scheduler, guidance, seed, split, dataset, batch_size,
             device, overwrite, out, as_json):
    """Generate labelled spectrograms with the diffusion model in RUN.

    Writes PNGs and metadata CSVs in the processed layout (with a `generated` column and
    captions) plus generation.json, so `sd train` and evaluation read them like real data.
    """
    from sd_core.diffusion.model import check_run
    from sd_core.diffusion.plans import parse_condition
    from sd_core.errors import SdError

    if steps < 1:
        raise SdError("--steps must be at least 1")
    if batch_size < 1:
        raise SdError("--batch-size must be at least 1")
    if guidance < 0:
        raise SdError("--guidance must be at least 0")
    run_dir = Path(run).resolve()
    spec = check_run(run_dir)
    parsed = [parse_condition(c, spec) for c in conditions]

    import torch

    from sd_core.diffusion.generate import generate_dataset

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    res = generate_dataset(run_dir, Path(out).resolve(), n, parsed, balanced, steps, scheduler, guidance,
                           seed, split, batch_size, dataset, overwrite, dev,
                           err_console() if as_json else console(), spec=spec, prompt=prompt)
    if as_json:
        print_json({"out": res["out"], "images": res["images"], "seconds": round(res["seconds"], 3),
                    "per_subject": res["per_subject"], "steps": steps, "scheduler": scheduler,
                    "guidance": guidance, "seed": seed})
        return
    t = table(f"{res['images']} images in {res['out']}", ["subject", "images"])
    for subject, k in sorted(res["per_subject"].items()):
        t.add_row(subject, str(k))
    console().print(t)
    console().print(f"{res['seconds'] / max(1, res['images']):.3f} s per image "
                    f"({steps} {scheduler} steps, guidance {guidance})")
