"""What a model kind's ``build`` and ``load`` return: :class:`DenoisingNetwork`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class DenoisingNetwork(nn.Module):
    """A diffusers model and how sd calls it.

    Subclasses hold the diffusers model (a ``ModelMixin``) as the attribute named by
    ``net_name`` and define ``cond_dim`` (the size of the conditioning vector), ``image_size``
    and ``forward(x, t, cond)``: images ``x`` (B, 1, S, S), timesteps ``t`` (a scalar or (B,)),
    the conditioning vector ``cond`` (B, cond_dim) → the prediction shaped like ``x``.
    Latent kinds also define ``latent_shape``, ``to_latent`` and ``from_latent`` (frozen parts,
    such as a VAE, have ``requires_grad`` off: they are neither optimised nor averaged).
    ``save`` writes the diffusers model with ``save_pretrained`` (safetensors), so that the run
    folder's sub-folder loads with ``from_pretrained`` of its class.
    """

    net_name = "net"

    @property
    def net(self) -> nn.Module:
        return getattr(self, self.net_name)

    @property
    def cond_dim(self) -> int:  # pragma: no cover - defined by every kind
        raise NotImplementedError

    @property
    def image_size(self) -> int:  # pragma: no cover - defined by every kind
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """The shape (C, H, W) the diffusion runs in: the image's, unless the kind encodes it."""
        return (1, self.image_size, self.image_size)

    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, S, S) → what the diffusion runs on (latent kinds encode; others: x)."""
        return x

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The sampler's result → images (B, 1, S, S) in about [-1, 1]."""
        return z

    def save(self, folder: Path) -> None:
        self.net.save_pretrained(str(folder), safe_serialization=True)


def batch_timesteps(t: torch.Tensor, n: int, device) -> torch.Tensor:
    """A scalar timestep (the sampling loop's) as one per image."""
    t = torch.as_tensor(t, device=device)
    return t.expand(n) if t.dim() == 0 else t
