"""The training loss of ``sd diffusion train``: guidance dropout and the (min-SNR weighted) noise
or velocity regression."""

from __future__ import annotations

import math

import torch


def drop_conditions(targets: dict[str, torch.Tensor], p: float, gen: torch.Generator,
                    text_rows: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Classifier-free guidance dropout: all conditions with probability p, and each one on
    its own with probability p (so a model can be asked for any subset of its conditions)."""
    out = {}
    n = len(next(iter(targets.values())))
    everything = torch.rand(n, generator=gen) < p
    for name, v in targets.items():
        drop = everything | (torch.rand(n, generator=gen) < p)
        v = v.clone()
        v[drop] = -1 if not v.dtype.is_floating_point else math.nan
        out[name] = v
    if text_rows is not None:
        drop = everything | (torch.rand(n, generator=gen) < p)
        text_rows = text_rows.clone()
        text_rows[drop] = math.nan
    return out, text_rows


def diffusion_loss(model, noise_scheduler, x0: torch.Tensor, labels: dict, text: torch.Tensor | None,
                   gen: torch.Generator, prediction_type: str, snr_gamma: float) -> torch.Tensor:
    from diffusers.training_utils import compute_snr

    device = x0.device
    n = x0.shape[0]
    noise = torch.randn(x0.shape, generator=gen).to(device)
    T = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, T, (n,), generator=gen).to(device)
    noisy = noise_scheduler.add_noise(x0, noise, t)
    pred = model(noisy, t, labels, text)
    target = noise if prediction_type == "epsilon" else noise_scheduler.get_velocity(x0, noise, t)
    mse = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    if snr_gamma > 0:
        snr = compute_snr(noise_scheduler, t)
        w = torch.clamp(snr, max=snr_gamma) / (snr if prediction_type == "epsilon" else snr + 1)
        mse = mse * w
    return mse.mean()
