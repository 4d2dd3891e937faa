"""``sd diffusion train``: conditional diffusion models of spectrograms."""

from __future__ import annotations

import click

from sd_core.cli import load_ctx_config
from sd_core.runs.console import console, table


@click.group()
def diffusion():
    """Train conditional diffusion models (sd diffusion train cfg.toml)."""


@diffusion.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json):
    """List the model kinds ([model] kind) and their options."""
    import json

    from sd_core.plugins.registry import get_registry

    reg = get_registry()
    if as_json:
        click.echo(json.dumps([
            {"kind": name, "plugin": reg.owner("sd_diffusion_models", name), "description": spec.description,
             "folder": spec.folder, "options": {k: {"default": o.default, "help": o.help, "choices": list(o.choices)}
                                                for k, o in spec.options.items()}}
            for name, spec in reg.diffusion_models.items()], indent=2))
        return
    t = table("sd diffusion models (\\[model] kind = ...)", ["kind", "plugin", "description", "options (default)"])
    for name, spec in reg.diffusion_models.items():
        opts = "\n".join(f"{k} = {o.default!r}: {o.help}" + (f" ({' | '.join(map(str, o.choices))})"
                                                             if o.choices else "")
                         for k, o in spec.options.items())
        t.add_row(name, reg.owner("sd_diffusion_models", name), spec.description, opts or "-")
    console().print(t)


@diffusion.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: [training] output_dir).")
@click.option("--resume", is_flag=True, help="Continue the run from its latest checkpoint.")
@click.option("--steps", type=int, help="Override [training] steps.")
@click.pass_context
def train(ctx, experiment, out, resume, steps):
    """Train a label-conditioned diffusion model on processed spectrograms (resumable).

    EXPERIMENT is a TOML file with [data], [model] and [training] sections; [model] kind
    chooses the model (see `sd diffusion models` and docs/diffusion.md). The run folder is a
    diffusers pipeline (model_index.json, the network with its EMA weights, the conditioning
    module, the scheduler) with checkpoints, sample grids, labels.json and a loss curve.
    """
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.errors import ConfigError

    exp = load_diffusion_experiment(experiment)
    if steps is not None:
        if steps < 1:
            raise ConfigError("--steps must be at least 1")
        exp["training"]["steps"] = steps
    project = load_ctx_config(ctx)

    from sd_core.diffusion.train import train_diffusion

    res = train_diffusion(exp, project, out=out, resume=resume, console=console())
    t = table(f"diffusion run {res['run']}", ["what", "value"])
    t.add_row("conditions", ", ".join(res["conditions"]))
    t.add_row("training images", str(res["images"]))
    t.add_row("steps", f"{res['steps']}" + (f" (resumed at {res['start']})" if res["start"] else ""))
    t.add_row("final loss (mean of last 10 steps)", f"{res['final_loss']:.4f}")
    t.add_row("seconds", f"{res['seconds']:.1f}")
    if res["grid"]:
        t.add_row("sample grid", str(res["grid"]))
    t.add_row("loss curve", str(res["run"] / "loss.png"))
    console().print(t)
    console().print(f"generate with: sd generate {res['run']} --n 8 --balanced --out DIR")


@diffusion.command("train-vae")
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--steps", type=int, help="Override [model] vae_steps.")
@click.option("--overwrite", is_flag=True, help="Replace an autoencoder train-vae wrote before.")
@click.pass_context
def train_vae(ctx, experiment, steps, overwrite):
    """Train the AutoencoderKL of a latent-unet experiment on its [data] images.

    Writes it to the folder [model] vae names (save_pretrained, safetensors) and reports the
    reconstruction error in grey levels (0-255) on validation images.
    """
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.errors import ConfigError

    exp = load_diffusion_experiment(experiment)
    if steps is not None and steps < 1:
        raise ConfigError("--steps must be at least 1")
    project = load_ctx_config(ctx)

    from sd_core.diffusion.vae import train_vae as run

    res = run(exp, project, steps=steps, overwrite=overwrite, console=console())
    t = table(f"autoencoder {res['out']}", ["what", "value"])
    t.add_row("training images", str(res["images"]))
    t.add_row("steps", str(res["steps"]))
    t.add_row("latent shape", " × ".join(map(str, res["latent_shape"])))
    t.add_row(f"reconstruction error ({res['eval_images']} {res['eval_split']} images)",
              f"{res['mae_grey']:.2f} grey levels mean absolute, {res['rmse_grey']:.2f} RMS")
    t.add_row("scaling factor", f"{res['scaling_factor']:.4f}")
    t.add_row("seconds", f"{res['seconds']:.1f}")
    console().print(t)
    console().print(f"train the latent model with: sd diffusion train {experiment}")
