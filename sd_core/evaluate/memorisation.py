"""Memorisation: are generated images copies of training images?

Distances are root-mean-square pixel differences (grey levels / 255) at the evaluation size.
For each generated image: the distance to its nearest real training image; for each real
held-out image (the real split): the same distance. A model that generalises makes images no
closer to the training set than unseen real images are, so the share of generated images closer
than the 1st percentile of the real distances should be near 1 %; far more are likely copies.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

#: the check flags a set when more than this share of its images are likely copies (ten times
#: the 1 % expected of a set that does not copy)
FLAG_SHARE = 0.10


def nearest(query: torch.Tensor, reference: torch.Tensor, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance of each uint8 query image to its nearest reference image, and its index."""
    ref = reference.reshape(len(reference), -1).float().div_(255.0)
    ref_sq = ref.pow(2).sum(1)
    d_all, i_all = [], []
    for i in range(0, len(query), chunk):
        q = query[i:i + chunk].reshape(-1, ref.shape[1]).float().div_(255.0)
        d2 = q.pow(2).sum(1, keepdim=True) + ref_sq[None, :] - 2.0 * q @ ref.T
        d, j = d2.clamp_min_(0).min(1)
        d_all.append(d)
        i_all.append(j)
    d = torch.cat(d_all).double().div(ref.shape[1]).sqrt().numpy()
    return d, torch.cat(i_all).numpy()


def memorisation(gen: torch.Tensor, real_train: torch.Tensor, real_heldout: torch.Tensor,
                 gen_rows: Sequence[dict], train_rows: Sequence[dict], show: int = 10) -> dict[str, Any]:
    d_gen, j_gen = nearest(gen, real_train)
    d_real, _ = nearest(real_heldout, real_train)
    threshold = float(np.percentile(d_real, 1)) if len(d_real) else float("nan")
    copies = d_gen < threshold
    share = float(copies.mean()) if len(d_gen) else float("nan")
    order = np.argsort(d_gen, kind="stable")[:show]
    q = [5, 25, 50, 75, 95]
    return {
        "distance": "RMS pixel difference (0-1) to the nearest real training image",
        "n_generated": int(len(d_gen)), "n_real_heldout": int(len(d_real)), "n_real_train": int(len(real_train)),
        "threshold_p1_real": threshold,
        "copies": int(copies.sum()), "copy_share": share,
        "flagged": bool(share > FLAG_SHARE and copies.sum() >= 2),
        "generated_quantiles": dict(zip(map(str, q), map(float, np.percentile(d_gen, q)))) if len(d_gen) else {},
        "real_quantiles": dict(zip(map(str, q), map(float, np.percentile(d_real, q)))) if len(d_real) else {},
        "closest": [{"generated": gen_rows[i]["file_name"], "real_train": train_rows[j_gen[i]]["file_name"],
                     "distance": float(d_gen[i])} for i in order],
        "_d_gen": d_gen, "_d_real": d_real,
    }


def histogram_plot(d_gen: np.ndarray, d_real: np.ndarray, threshold: float) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    hi = max(float(np.max(d_gen, initial=0)), float(np.max(d_real, initial=0)), 1e-6)
    bins = np.linspace(0, hi, 40)
    ax.hist(d_real, bins=bins, alpha=0.6, density=True, label="real held-out → train")
    ax.hist(d_gen, bins=bins, alpha=0.6, density=True, label="generated → train")
    if threshold == threshold:
        ax.axvline(threshold, color="k", ls=":", label="1st percentile of real")
    ax.set_xlabel("distance to nearest real training image (RMS, 0-1)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
