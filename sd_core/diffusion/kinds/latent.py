"""The ``latent-unet`` kind: a ``UNet2DConditionModel`` in the latent space of a frozen
``AutoencoderKL`` (a local folder, or one ``sd diffusion train-vae`` trained on the spectrograms).

Training encodes each image batch to latents (the mean of the posterior, times the VAE's
``scaling_factor``, so that one seed gives one run); sampling draws noise in the latent shape and
decodes the result. The conditioning vector goes in twice: added to the timestep embedding
(identity class embedding) and as the one token the cross-attention blocks attend to.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sd_core.diffusion.kinds.base import DenoisingNetwork
from sd_core.errors import ConfigError

VAE_DIR = "vae"


def load_vae(path: Path, where: str = "[model] vae"):
    from diffusers import AutoencoderKL

    if not (path / "config.json").is_file():
        raise ConfigError(f"{where}: {path} holds no AutoencoderKL (no config.json); train one with "
                          "`sd diffusion train-vae cfg.toml`, or give a folder written by save_pretrained")
    try:
        vae = AutoencoderKL.from_pretrained(str(path), use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot load an AutoencoderKL from {path} ({exc})") from None
    if vae.config.in_channels != 1 or vae.config.out_channels != 1:
        raise ConfigError(f"{where}: {path} has {vae.config.in_channels} input and {vae.config.out_channels} "
                          "output channels; spectrograms need 1 and 1")
    return vae


def vae_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


class LatentUNetNetwork(DenoisingNetwork):
    net_name = "unet"

    def __init__(self, unet, vae) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae.eval()
        self.vae.requires_grad_(False)

    @property
    def cond_dim(self) -> int:
        return int(self.unet.time_embedding.linear_2.out_features)

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size) * vae_factor(self.vae)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        s = int(self.unet.config.sample_size)
        return (int(self.unet.config.in_channels), s, s)

    @torch.no_grad()
    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(x).latent_dist.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z / self.vae.config.scaling_factor).sample

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, encoder_hidden_states=cond[:, None, :].to(x.dtype), class_labels=cond).sample

    def save(self, folder: Path) -> None:
        """The UNet in ``folder``, the VAE beside it in ``vae/`` (where a diffusers pipeline looks)."""
        self.unet.save_pretrained(str(folder), safe_serialization=True)
        self.vae.save_pretrained(str(Path(folder).parent / VAE_DIR), safe_serialization=True)


def build(image_size: int, vae: str = "", block_out_channels=(64, 128), layers_per_block: int = 1,
          norm_num_groups: int = 8, **_vae_training) -> LatentUNetNetwork:
    from diffusers import UNet2DConditionModel

    if not vae:
        raise ConfigError("[model] vae is empty; name the AutoencoderKL folder (sd diffusion train-vae "
                          "writes one there)")
    autoencoder = load_vae(Path(vae))
    f = vae_factor(autoencoder)
    if image_size % (f * 2 ** (len(block_out_channels) - 1)):
        raise ConfigError(f"[data] image_size = {image_size} must be a multiple of "
                          f"{f * 2 ** (len(block_out_channels) - 1)} (the VAE divides it by {f}, the UNet "
                          f"halves that {len(block_out_channels) - 1} times)")
    channels = tuple(int(c) for c in block_out_channels)
    n = len(channels)
    unet = UNet2DConditionModel(
        sample_size=image_size // f, in_channels=autoencoder.config.latent_channels,
        out_channels=autoencoder.config.latent_channels, block_out_channels=channels,
        layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=channels[0] * 4, class_embed_type="identity",
        attention_head_dim=tuple(c // 32 if c % 32 == 0 else 1 for c in channels))  # heads, in diffusers' naming
    return LatentUNetNetwork(unet, autoencoder)


def load(folder: Path) -> LatentUNetNetwork:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(folder), use_safetensors=True)
    return LatentUNetNetwork(unet, load_vae(Path(folder).parent / VAE_DIR, where=str(folder.parent)))
