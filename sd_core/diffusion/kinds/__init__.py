"""The built-in kinds of denoising network (``[model] kind``), registered by ``sd_core.builtin.hooks``.

Light: the specs below import nothing heavy; ``unet``, ``dit`` and ``base`` (torch, diffusers) are
imported by the build and load functions only.

- ``unet``: today's pixel-space ``UNet2DModel`` (optionally on p×p patches, or from a local folder);
- ``latent-unet``: a ``UNet2DConditionModel`` in the latent space of an ``AutoencoderKL``;
- ``stable-diffusion``: fine-tuning the UNet of a local ``StableDiffusionPipeline`` folder;
- ``dit``: a diffusion transformer on image patches (diffusers' ``SD3Transformer2DModel``, whose
  pooled-projection input takes sd's conditioning vector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sd_core.plugins.specs import DiffusionModelSpec, OptionSpec

UNET_OPTIONS = {
    "block_out_channels": OptionSpec([32, 64, 64], "channels per UNet resolution level (positive integers)"),
    "layers_per_block": OptionSpec(1, "ResNet layers per UNet block"),
    "attention": OptionSpec(True, "self-attention blocks at the lowest resolution"),
    "norm_num_groups": OptionSpec(8, "groups of the group norms (must divide every channel count)"),
    "patch_size": OptionSpec(1, "the UNet sees p×p pixel patches as p² channels at 1/p of the image size "
                             "(2: a 64×64 model costs about a 32×32 one)", choices=(1, 2, 4)),
    "pretrained": OptionSpec("", "local folder of a UNet2DModel saved with save_pretrained to start from "
                             "(\"\" = train from scratch; the shape options are then ignored)", path=True),
}

DIT_OPTIONS = {
    "patch_size": OptionSpec(2, "pixels per side of the square patches the transformer sees as tokens",
                             choices=(1, 2, 4, 8)),
    "num_layers": OptionSpec(4, "transformer blocks"),
    "num_attention_heads": OptionSpec(4, "attention heads per block"),
    "attention_head_dim": OptionSpec(32, "channels per attention head (width = heads × this)"),
}


LATENT_OPTIONS = {
    "vae": OptionSpec("vae", "folder of the AutoencoderKL (save_pretrained, one channel in and out) whose latent "
                      "space the UNet works in; `sd diffusion train-vae` trains one there", path=True),
    "block_out_channels": OptionSpec([64, 128], "channels per UNet resolution level; levels after the first "
                                     "cross-attend to the conditioning vector"),
    "layers_per_block": OptionSpec(1, "ResNet layers per UNet block"),
    "norm_num_groups": OptionSpec(8, "groups of the UNet's and the VAE's group norms"),
    "vae_channels": OptionSpec([32, 64], "train-vae: channels per VAE level (n levels shrink the image 2^(n-1) times)"),
    "latent_channels": OptionSpec(4, "train-vae: channels of the latent space"),
    "vae_steps": OptionSpec(400, "train-vae: optimizer steps"),
    "vae_lr": OptionSpec(1e-3, "train-vae: learning rate (AdamW)"),
    "vae_kl": OptionSpec(1e-6, "train-vae: weight of the KL term against the reconstruction error"),
}


PIPELINE_OPTIONS = {
    "pretrained_pipeline": OptionSpec("", "local folder of a StableDiffusionPipeline saved with save_pretrained "
                                      "(unet, vae, text_encoder, tokenizer); its UNet is fine-tuned", path=True),
}


def _positive_ints(options: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        v = options[name]
        values = v if isinstance(v, list) else [v]
        if not values or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in values):
            what = "a non-empty list of positive integers" if isinstance(v, list) else "a positive integer"
            return f"[model] {name} must be {what}, got {v!r}"
    return None


def check_unet(image_size: int, options: dict[str, Any]) -> str | None:
    problem = _positive_ints(options, ("block_out_channels", "layers_per_block", "norm_num_groups"))
    if problem or options["pretrained"]:
        return problem
    channels, groups = options["block_out_channels"], options["norm_num_groups"]
    bad = [c for c in channels if c % groups]
    if bad:
        return f"[model] norm_num_groups = {groups} does not divide block_out_channels {bad}"
    factor = 2 ** (len(channels) - 1) * options["patch_size"]
    if image_size % factor:
        return (f"[data] image_size = {image_size} must be a multiple of {factor} (patches of "
                f"{options['patch_size']} pixels, then the UNet halves it {len(channels) - 1} times)")
    return None


def check_latent(image_size: int, options: dict[str, Any]) -> str | None:
    problem = _positive_ints(options, ("block_out_channels", "layers_per_block", "norm_num_groups",
                                       "vae_channels", "latent_channels", "vae_steps"))
    if problem:
        return problem
    groups = options["norm_num_groups"]
    bad = [c for c in [*options["block_out_channels"], *options["vae_channels"]] if c % groups]
    if bad:
        return f"[model] norm_num_groups = {groups} does not divide the channel counts {bad}"
    return None


def check_pipeline(image_size: int, options: dict[str, Any]) -> str | None:
    folder = options["pretrained_pipeline"]
    if not folder:
        return ("[model] pretrained_pipeline is required for kind = \"stable-diffusion\": a local folder written "
                "by StableDiffusionPipeline.save_pretrained")
    if not Path(folder).is_dir():
        return (f"[model] pretrained_pipeline: {folder} is not a folder; give a local folder written by "
                "StableDiffusionPipeline.save_pretrained")
    missing = [p for p in ("unet", "vae", "text_encoder", "tokenizer") if not (Path(folder) / p).is_dir()]
    if missing:
        return (f"[model] pretrained_pipeline: {folder} is not a Stable Diffusion pipeline folder written by "
                f"save_pretrained (no {', '.join(missing)})")
    return None


def check_dit(image_size: int, options: dict[str, Any]) -> str | None:
    problem = _positive_ints(options, ("num_layers", "num_attention_heads", "attention_head_dim"))
    if problem:
        return problem
    if image_size % options["patch_size"]:
        return (f"[data] image_size = {image_size} must be a multiple of [model] patch_size = "
                f"{options['patch_size']}")
    return None


def _build_unet(image_size: int, **options):
    from sd_core.diffusion.kinds.unet import build

    return build(image_size, **options)


def _load_unet(folder: Path):
    from sd_core.diffusion.kinds.unet import load

    return load(folder)


def _build_dit(image_size: int, **options):
    from sd_core.diffusion.kinds.dit import build

    return build(image_size, **options)


def _load_dit(folder: Path):
    from sd_core.diffusion.kinds.dit import load

    return load(folder)


def _build_latent(image_size: int, **options):
    from sd_core.diffusion.kinds.latent import build

    return build(image_size, **options)


def _load_latent(folder: Path):
    from sd_core.diffusion.kinds.latent import load

    return load(folder)


def _build_pipeline(image_size: int, **options):
    from sd_core.diffusion.kinds.pretrained import build

    return build(image_size, **options)


def _load_pipeline(folder: Path):
    from sd_core.diffusion.kinds.pretrained import load

    return load(folder)


def builtin_kinds() -> list[DiffusionModelSpec]:
    return [
        DiffusionModelSpec("unet", _build_unet, _load_unet,
                           "pixel-space UNet (diffusers UNet2DModel); the conditioning vector is added "
                           "to the timestep embedding", UNET_OPTIONS, check_unet, folder="unet"),
        DiffusionModelSpec("dit", _build_dit, _load_dit,
                           "diffusion transformer on image patches (diffusers SD3Transformer2DModel); the "
                           "conditioning vector is its pooled projection, added to the timestep "
                           "embedding of every block's adaptive norm", DIT_OPTIONS, check_dit,
                           folder="transformer"),
        DiffusionModelSpec("latent-unet", _build_latent, _load_latent,
                           "UNet (diffusers UNet2DConditionModel) in the latent space of a frozen AutoencoderKL "
                           "(a local folder, or `sd diffusion train-vae cfg.toml`); the conditioning vector is "
                           "added to the timestep embedding and cross-attended to", LATENT_OPTIONS, check_latent,
                           folder="unet"),
        DiffusionModelSpec("stable-diffusion", _build_pipeline, _load_pipeline,
                           "fine-tunes the UNet of a local Stable Diffusion pipeline; captions go through the "
                           "pipeline's own text encoder into its cross-attention (sd generate --prompt), labels "
                           "into the timestep embedding", PIPELINE_OPTIONS, check_pipeline, folder="unet"),
    ]
