"""``sd diffusion train-vae cfg.toml``: the AutoencoderKL of a ``latent-unet`` experiment.

Trains a one-channel ``AutoencoderKL`` on the experiment's ``[data]`` images (reconstruction
error plus a small KL term, ``[model] vae_*`` options), sets its ``scaling_factor`` so that the
latents of the training images have unit variance, and writes it with ``save_pretrained`` to the
folder ``[model] vae`` names, with ``train-vae.json`` (what was trained, and the reconstruction
error in grey levels on validation images, or training images where the data has no val split).
sd replaces that folder only with ``--overwrite`` and only when it wrote it (train-vae.json).
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from sd_core.config.experiment import Experiment
from sd_core.errors import ConfigError, DatasetError, SdError

REPORT = "train-vae.json"
#: what train-vae writes in its folder (the only files --overwrite replaces)
WRITTEN = ("config.json", "diffusion_pytorch_model.safetensors", REPORT)
LATENT_KIND = "latent-unet"


def build_vae(options: dict[str, Any], image_size: int):
    from diffusers import AutoencoderKL

    channels = tuple(int(c) for c in options["vae_channels"])
    n = len(channels)
    return AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=channels,
                         latent_channels=int(options["latent_channels"]), layers_per_block=1,
                         norm_num_groups=int(options["norm_num_groups"]), sample_size=image_size)


@torch.no_grad()
def reconstruction_error(vae, images: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """Mean absolute and RMS error of the reconstructions (posterior mode), in grey levels 0–255."""
    from sd_core.diffusion.sampling import to_uint8

    errors = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        errors.append(to_uint8(rec).float() - to_uint8(x).float())
    e = torch.cat(errors)
    return {"mae_grey": float(e.abs().mean()), "rmse_grey": float(e.pow(2).mean().sqrt())}


def _eval_images(exp: Experiment, project: Any, registry: Any, train_images) -> tuple[torch.Tensor, str]:
    from sd_core.diffusion.data import load_training_data

    val = Experiment(exp.source, copy.deepcopy(exp.sections))
    val["data"]["split"] = "val"
    val["data"]["balanced"] = ""
    try:
        _, _, images, _ = load_training_data(val, project, registry)
        split = "val"
    except (DatasetError, SdError):
        images, split = train_images, exp["data"]["split"]
    idx = list(range(min(64, len(images))))
    return images.__getitems__(idx)["image"], split


def train_vae(exp: Experiment, project: Any, registry: Any = None, steps: int | None = None,
              overwrite: bool = False, console: Any = None) -> dict[str, Any]:
    from sd_core.data.sampling import epoch_batches, epoch_order
    from sd_core.diffusion.config import kind_options
    from sd_core.diffusion.data import load_training_data
    from sd_core.preprocess.layout import write_json

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    src = str(exp.source)
    if exp["model"]["kind"] != LATENT_KIND:
        raise ConfigError(f"{src}: [model] kind = {exp['model']['kind']!r}; sd diffusion train-vae trains the "
                          f"autoencoder of kind = \"{LATENT_KIND}\"")
    opts = kind_options(exp, registry.diffusion_model(LATENT_KIND))
    out = Path(opts["vae"])
    if out.exists() and any(out.iterdir()):
        others = sorted(p.name for p in out.iterdir() if p.name not in WRITTEN)
        if not (overwrite and (out / REPORT).is_file()) or others:
            why = ("pass --overwrite to replace it" if (out / REPORT).is_file() and not others else
                   f"it holds {others[0] if others else out.name} that sd diffusion train-vae did not write, "
                   "so sd does not replace it")
            raise SdError(f"{src}: [model] vae folder {out} exists; {why} (or set another [model] vae)")
    d = exp["data"]
    steps = int(steps or opts["vae_steps"])
    seed = int(exp["training"]["seed"])
    say = console.print if console is not None else (lambda *a, **k: None)
    rows, _, images, weights = load_training_data(exp, project, registry)
    torch.manual_seed(seed)
    vae = build_vae(opts, d["image_size"])
    opt = torch.optim.AdamW(vae.parameters(), lr=float(opts["vae_lr"]))
    per_epoch = max(1, math.ceil(len(rows) / d["batch_size"]))
    say(f"training an AutoencoderKL on {len(rows)} images at {d['image_size']}×{d['image_size']}: "
        f"{sum(p.numel() for p in vae.parameters()):,} parameters, {steps} steps")
    t0, losses = time.perf_counter(), []
    vae.train()
    for step in range(steps):
        epoch, i = divmod(step, per_epoch)
        idx = epoch_batches(epoch_order(len(rows), epoch, seed, weights), d["batch_size"])[i]
        x = images.__getitems__(idx)["image"]
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        loss = torch.nn.functional.mse_loss(rec, x) + float(opts["vae_kl"]) * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    seconds = time.perf_counter() - t0
    vae.eval()
    with torch.no_grad():
        train_x = images.__getitems__(list(range(min(256, len(rows)))))["image"]
        std = float(vae.encode(train_x).latent_dist.mode().std())
    vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))
    eval_x, split = _eval_images(exp, project, registry, images)
    err = reconstruction_error(vae, eval_x)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(str(tmp), safe_serialization=True)
    report = {"steps": steps, "seconds": round(seconds, 3), "images": len(rows), "image_size": d["image_size"],
              "final_loss": sum(losses[-10:]) / max(1, len(losses[-10:])), "eval_split": split,
              "eval_images": len(eval_x), **err, "scaling_factor": vae.config.scaling_factor,
              "latent_shape": [int(opts["latent_channels"]), *[d["image_size"] // 2 ** (len(opts["vae_channels"]) - 1)] * 2]}
    write_json(tmp / REPORT, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(f".{out.name}.old")
    if out.exists():  # empty, or only what train-vae wrote (checked above), and --overwrite given
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return {"out": out, **report}
