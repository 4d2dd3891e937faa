"""Set-level metrics between real and generated feature vectors: FID, KID, PRDC.

All take ``real`` (N, D) and ``gen`` (M, D) float tensors and return ``{name: value}`` (NaN
where the sets are too small). They are registered as the core's set metrics
(``sd_core.builtin.hooks``), so a plugin can add others beside them.

- **FID** (Heusel et al. 2017): ``|mu_r - mu_g|² + tr(S_r + S_g - 2 (S_r S_g)^½)`` with the
  features' means and covariances; the trace of the root is the sum of the square roots of the
  eigenvalues of ``S_r S_g`` (real and non-negative for two covariance matrices).
- **KID** (Bińkowski et al. 2018): the unbiased MMD² with the kernel ``(x·y / D + 1)³``,
  averaged over ``subsets`` random subsets of ``subset_size`` rows (at most half the smaller
  set) of each set (seeded).
  ``kid_std`` is the spread of the subset estimates; ``kid_se`` = ``kid_std / sqrt(subsets)``,
  the standard error of their mean.
- **PRDC** (Naeem et al. 2020, k = 5): each real point's ball reaches its k-th nearest real
  neighbour. precision = share of generated points inside some real ball; recall = share of
  real points inside some generated ball (generated radii likewise); density = mean number of
  real balls holding a generated point, divided by k; coverage = share of real balls holding a
  generated point.
"""

from __future__ import annotations

import math

import numpy as np
import torch

NAN = float("nan")


def _f64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)


def fid(real, gen, seed: int = 0) -> dict[str, float]:
    real, gen = _f64(real), _f64(gen)
    if len(real) < 2 or len(gen) < 2:
        return {"fid": NAN}
    mu_r, mu_g = real.mean(0), gen.mean(0)
    cov_r = torch.cov(real.T).reshape(real.shape[1], real.shape[1])
    cov_g = torch.cov(gen.T).reshape(gen.shape[1], gen.shape[1])
    eig = np.linalg.eigvals((cov_r @ cov_g).numpy())
    root_trace = float(np.sqrt(np.clip(eig.real, 0, None)).sum())
    value = float((mu_r - mu_g).pow(2).sum() + torch.trace(cov_r) + torch.trace(cov_g)) - 2 * root_trace
    return {"fid": max(value, 0.0)}


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    kxx, kyy, kxy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
    m, n = len(x), len(y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def _kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x·y / D + 1)³ for every pair of rows."""
    return (x @ y.T).div_(x.shape[1]).add_(1.0).pow_(3)


def kid(real, gen, seed: int = 0, subsets: int = 50, subset_size: int = 1000) -> dict[str, float]:
    real, gen = _f64(real), _f64(gen)
    # subsets of at most half the smaller set, so that they differ and their spread means something
    size = min(subset_size, max(2, min(len(real), len(gen)) // 2))
    if size < 2 or len(real) < 2 or len(gen) < 2:
        return {"kid": NAN, "kid_se": NAN, "kid_std": NAN}
    rng = np.random.default_rng(seed)
    picks = [(rng.choice(len(real), size, replace=False), rng.choice(len(gen), size, replace=False))
             for _ in range(subsets)]
    if len(real) * len(gen) <= 16_000_000:
        # every subset's sums from the whole kernel matrices: u'Ku with 0/1 indicator rows u
        krr, kgg, krg = _kernel(real, real), _kernel(gen, gen), _kernel(real, gen)
        ur = torch.zeros(subsets, len(real), dtype=torch.float64)
        ug = torch.zeros(subsets, len(gen), dtype=torch.float64)
        for i, (ir, ig) in enumerate(picks):
            ur[i, torch.as_tensor(ir)] = 1.0
            ug[i, torch.as_tensor(ig)] = 1.0
        sxx = ((ur @ krr) * ur).sum(1) - ur @ krr.diagonal()
        syy = ((ug @ kgg) * ug).sum(1) - ug @ kgg.diagonal()
        sxy = ((ur @ krg) * ug).sum(1)
        v = (sxx / (size * (size - 1)) + syy / (size * (size - 1)) - 2 * sxy / (size * size)).numpy()
    else:
        v = np.asarray([_mmd2_unbiased(real[torch.as_tensor(ir)], gen[torch.as_tensor(ig)]) for ir, ig in picks])
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"kid": float(v.mean()), "kid_se": std / math.sqrt(len(v)), "kid_std": std}


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour in its own set (itself excluded)."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values


def prdc(real, gen, seed: int = 0, k: int = 5) -> dict[str, float]:
    real, gen = _f64(real), _f64(gen)
    names = ("precision", "recall", "density", "coverage")
    if len(real) <= k or len(gen) <= k:
        return dict.fromkeys(names, NAN)
    r_real = _kth_radius(real, k)
    r_gen = _kth_radius(gen, k)
    d = torch.cdist(real, gen)  # (N, M)
    inside_real = d <= r_real[:, None]  # generated j inside real ball i
    precision = inside_real.any(0).double().mean()
    recall = (d <= r_gen[None, :]).any(1).double().mean()
    density = inside_real.sum(0).double().mean() / k
    coverage = (d.min(1).values <= r_real).double().mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}


def compute_all(metrics, real, gen, seed: int) -> dict[str, float]:
    """Every set metric (SetMetricSpec) on one pair of sets, outputs merged in order."""
    out: dict[str, float] = {}
    real, gen = _f64(real), _f64(gen)
    for spec in metrics:
        values = spec.compute(real, gen, seed)
        for key in spec.outputs:
            v = values.get(key, NAN)
            out[key] = float(v) if v is not None else NAN
    return out
