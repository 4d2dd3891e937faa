"""The ``stable-diffusion`` kind: fine-tuning a local pretrained Stable Diffusion pipeline.

``[model] pretrained_pipeline`` names a folder written by ``StableDiffusionPipeline.save_pretrained``
(``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``; nothing is downloaded). The UNet is
trained; the VAE and the text encoder stay frozen. Captions (the metadata's ``caption`` column, or
``sd generate --prompt``) go through the pipeline's own tokenizer and text encoder into the UNet's
cross-attention; a dropped caption (classifier-free guidance) is the empty prompt, as in Stable
Diffusion. The labels' conditioning vector is added to the timestep embedding through an identity
class embedding whose input starts at zero (see ``init_conditioning``), so fine-tuning starts from
the pretrained model. Grey images are encoded as three equal channels and decoded to their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from sd_core.diffusion.kinds.base import DenoisingNetwork
from sd_core.errors import ConfigError

PARTS = ("vae", "text_encoder", "tokenizer")


def _load_parts(folder: Path, unet_folder: Path, where: str):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    missing = [p for p in ("unet", *PARTS) if not (folder / p).is_dir()] if unet_folder == folder / "unet" else \
        [p for p in PARTS if not (folder / p).is_dir()]
    if missing:
        raise ConfigError(f"{where}: {folder} is not a Stable Diffusion pipeline folder written by "
                          f"save_pretrained (no {', '.join(missing)})")
    try:
        unet = UNet2DConditionModel.from_pretrained(str(unet_folder), use_safetensors=True,
                                                    class_embed_type="identity", low_cpu_mem_usage=False)
        vae = AutoencoderKL.from_pretrained(str(folder / "vae"), use_safetensors=True)
        text = CLIPTextModel.from_pretrained(str(folder / "text_encoder"), use_safetensors=True,
                                             local_files_only=True)
        tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    except (OSError, ValueError) as exc:
        text = " ".join(str(exc).split())[:300]
        raise ConfigError(f"{where}: cannot load the pipeline in {folder} ({text})") from None
    return unet, vae, text, tokenizer


class PipelineNetwork(DenoisingNetwork):
    net_name = "unet"
    uses_context = True

    def __init__(self, unet, vae, text_encoder, tokenizer) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae.eval().requires_grad_(False)
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.register_buffer("null_context", self.encode([""])[0], persistent=False)

    @property
    def cond_dim(self) -> int:
        return int(self.unet.time_embedding.linear_2.out_features)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size) * self.factor

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        s = int(self.unet.config.sample_size)
        return (int(self.unet.config.in_channels), s, s)

    @property
    def dim(self) -> int:  # what sd's caption tables call the width of an embedding
        return int(self.text_encoder.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Captions → the text encoder's last hidden states (N, L, D), as Stable Diffusion does."""
        out = []
        device = next(self.text_encoder.parameters()).device
        for i in range(0, len(texts), batch_size):
            tok = self.tokenizer(list(texts[i:i + batch_size]), padding="max_length", truncation=True,
                                 max_length=self.tokenizer.model_max_length, return_tensors="pt")
            out.append(self.text_encoder(tok.input_ids.to(device))[0].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.tokenizer.model_max_length, self.dim)

    def init_conditioning(self, cond: nn.Module) -> None:
        """The labels' vector starts at zero, so that training starts from the pretrained model."""
        nn.init.zeros_(cond.out[-1].weight)
        nn.init.zeros_(cond.out[-1].bias)

    @torch.no_grad()
    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x.expand(-1, int(self.vae.config.in_channels), -1, -1)
        return self.vae.encode(rgb).latent_dist.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z / self.vae.config.scaling_factor).sample.mean(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        null = self.null_context.to(x.dtype).expand(x.shape[0], -1, -1)
        if context is None:
            context = null
        else:
            context = context.to(x.dtype)
            dropped = torch.isnan(context).flatten(1).any(dim=1)
            context = torch.where(dropped[:, None, None], null, torch.nan_to_num(context))
        return self.unet(x, t, encoder_hidden_states=context, class_labels=cond.to(x.dtype)).sample

    def save(self, folder: Path) -> None:
        """The UNet in ``folder``, the frozen parts beside it (vae/, text_encoder/, tokenizer/)."""
        folder = Path(folder)
        self.unet.save_pretrained(str(folder), safe_serialization=True)
        self.vae.save_pretrained(str(folder.parent / "vae"), safe_serialization=True)
        self.text_encoder.save_pretrained(str(folder.parent / "text_encoder"), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder.parent / "tokenizer"))


def build(image_size: int, pretrained_pipeline: str = "") -> PipelineNetwork:
    if not pretrained_pipeline:
        raise ConfigError("[model] pretrained_pipeline is empty; give a local folder written by "
                          "StableDiffusionPipeline.save_pretrained")
    folder = Path(pretrained_pipeline)
    if not folder.is_dir():
        raise ConfigError(f"[model] pretrained_pipeline: {folder} is not a folder; give a local folder written by "
                          "StableDiffusionPipeline.save_pretrained")
    unet, vae, text, tokenizer = _load_parts(folder, folder / "unet", "[model] pretrained_pipeline")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if image_size % factor:
        raise ConfigError(f"[data] image_size = {image_size} must be a multiple of {factor} (the pipeline's "
                          "VAE shrinks images that many times)")
    unet.register_to_config(sample_size=image_size // factor)
    return PipelineNetwork(unet, vae, text, tokenizer)


def load(folder: Path) -> PipelineNetwork:
    return PipelineNetwork(*_load_parts(Path(folder).parent, Path(folder), str(Path(folder).parent)))
