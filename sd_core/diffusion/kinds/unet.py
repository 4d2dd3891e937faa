"""The ``unet`` kind: a one-channel pixel-space ``UNet2DModel`` (optionally on p×p patches)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sd_core.diffusion.kinds.base import DenoisingNetwork
from sd_core.errors import ConfigError


def build_unet(model_cfg: Mapping[str, Any], image_size: int, where: str = "[model]"):
    """A one-channel ``UNet2DModel`` with identity class embedding (see conditioning)."""
    from diffusers import UNet2DModel

    if model_cfg.get("pretrained"):
        return load_pretrained_unet(Path(model_cfg["pretrained"]), image_size, where)
    channels = tuple(int(c) for c in model_cfg["block_out_channels"])
    patch = int(model_cfg.get("patch_size", 1))
    n = len(channels)
    attn = bool(model_cfg["attention"])
    down = ["DownBlock2D"] * n
    up = ["UpBlock2D"] * n
    if attn:
        down[-1] = "AttnDownBlock2D"
        up[0] = "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=image_size // patch, in_channels=patch * patch, out_channels=patch * patch,
        block_out_channels=channels,
        layers_per_block=int(model_cfg["layers_per_block"]), down_block_types=tuple(down),
        up_block_types=tuple(up), norm_num_groups=int(model_cfg["norm_num_groups"]),
        attention_head_dim=min(channels[-1], 32), add_attention=attn, class_embed_type="identity",
    )


def load_pretrained_unet(path: Path, image_size: int, where: str = "[model] pretrained"):
    """A local UNet2DModel saved with ``save_pretrained``; its class embedding becomes identity."""
    from diffusers import UNet2DModel

    if not (path / "config.json").is_file():
        raise ConfigError(f"{where}: {path} is not a folder written by save_pretrained "
                          "(no config.json); give a local UNet2DModel folder or \"\"")
    try:
        channels = int(json.loads((path / "config.json").read_text(encoding="utf-8")).get("in_channels", 1))
        patch = max(1, round(channels ** 0.5))
        unet = UNet2DModel.from_pretrained(str(path), class_embed_type="identity", num_class_embeds=None,
                                           sample_size=image_size // patch, low_cpu_mem_usage=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot load a UNet2DModel from {path} ({exc})") from None
    if unet.config.in_channels != unet.config.out_channels or patch_size(unet) is None:
        raise ConfigError(f"{where}: {path} has {unet.config.in_channels} input and "
                          f"{unet.config.out_channels} output channels; spectrograms need 1 and 1 "
                          "(or p² and p² for patches of p×p pixels)")
    return unet


def time_embed_dim(unet) -> int:
    return int(unet.time_embedding.linear_2.out_features)


def patch_size(unet) -> int | None:
    """p of a UNet working on p×p patches of a one-channel image (p² channels), else None."""
    p = round(unet.config.in_channels ** 0.5)
    return p if p * p == unet.config.in_channels else None


class UNetNetwork(DenoisingNetwork):
    """The UNet; the conditioning vector goes in as ``class_labels`` (identity class embedding),
    added to the timestep embedding. With ``patch_size`` p > 1 the UNet sees the image as p×p
    patches stacked as p² channels (pixel unshuffle) at 1/p of the size, and its output is put
    back (pixel shuffle): the same model on a 64×64 image costs about what it costs on 32×32."""

    net_name = "unet"

    def __init__(self, unet) -> None:
        super().__init__()
        self.unet = unet
        self.patch = patch_size(unet) or 1

    @property
    def cond_dim(self) -> int:
        return time_embed_dim(self.unet)

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size) * self.patch

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        p = self.patch
        if p > 1:
            x = nn.functional.pixel_unshuffle(x, p)
        out = self.unet(x, t, class_labels=cond).sample
        return nn.functional.pixel_shuffle(out, p) if p > 1 else out


def build(image_size: int, **options) -> UNetNetwork:
    return UNetNetwork(build_unet(options, image_size, where="[model] pretrained"))


def load(folder: Path) -> UNetNetwork:
    from diffusers import UNet2DModel

    # safetensors only: diffusers never falls back to a pickled .bin here
    return UNetNetwork(UNet2DModel.from_pretrained(str(folder), use_safetensors=True))
