"""The ``dit`` kind: a diffusion transformer on p×p image patches.

diffusers' ``SD3Transformer2DModel`` (MMDiT): its ``pooled_projections`` input is added to the
timestep embedding that drives every block's adaptive layer norm, which is where sd's
conditioning vector goes (as class labels go into DiT's adaLN-Zero). Its joint-attention text
stream gets one constant token (sd conditions on captions through the conditioning vector).
"""

from __future__ import annotations

from pathlib import Path

import torch

from sd_core.diffusion.kinds.base import DenoisingNetwork, batch_timesteps


class DiTNetwork(DenoisingNetwork):
    net_name = "transformer"

    def __init__(self, transformer) -> None:
        super().__init__()
        self.transformer = transformer

    @property
    def cond_dim(self) -> int:
        return int(self.transformer.config.pooled_projection_dim)

    @property
    def image_size(self) -> int:
        return int(self.transformer.config.sample_size)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        context = x.new_zeros(n, 1, int(self.transformer.config.joint_attention_dim))
        return self.transformer(x, encoder_hidden_states=context, pooled_projections=cond.to(x.dtype),
                                timestep=batch_timesteps(t, n, x.device)).sample


def build(image_size: int, patch_size: int = 2, num_layers: int = 4, num_attention_heads: int = 4,
          attention_head_dim: int = 32) -> DiTNetwork:
    from diffusers import SD3Transformer2DModel

    width = num_attention_heads * attention_head_dim
    return DiTNetwork(SD3Transformer2DModel(
        sample_size=image_size, patch_size=patch_size, in_channels=1, out_channels=1, num_layers=num_layers,
        attention_head_dim=attention_head_dim, num_attention_heads=num_attention_heads,
        joint_attention_dim=width, caption_projection_dim=width, pooled_projection_dim=width,
        pos_embed_max_size=image_size // patch_size))


def load(folder: Path) -> DiTNetwork:
    from diffusers import SD3Transformer2DModel

    return DiTNetwork(SD3Transformer2DModel.from_pretrained(str(folder), use_safetensors=True))
