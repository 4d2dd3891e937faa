"""Pictures of a run: labelled sample grids and the loss curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sd_core.runs.files import atomic_open

if TYPE_CHECKING:  # pragma: no cover
    from sd_core.data.labels import LabelSpec
    from sd_core.diffusion.model import TextEncoder


def _tile(img: np.ndarray, tile: int):
    from PIL import Image

    return Image.fromarray(np.asarray(img, dtype=np.uint8)).resize((tile, tile), Image.NEAREST)


def labelled_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], path: Path, tile: int = 64,
                  title: str = "", label_width: int = 180) -> Path:
    """One row per (label, images); the label is written left of the row. Saved atomically."""
    from PIL import Image, ImageDraw

    cols = max((len(imgs) for _, imgs in rows), default=1)
    top = 16 if title else 0
    pad = 2
    sheet = Image.new("L", (label_width + cols * (tile + pad) + pad, top + len(rows) * (tile + pad) + pad), 30)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 2), title, fill=235)
    for r, (label, imgs) in enumerate(rows):
        y = top + pad + r * (tile + pad)
        for i, line in enumerate(_wrap(label, label_width // 6)[: max(1, tile // 12)]):
            draw.text((4, y + 2 + 12 * i), line, fill=235)
        for c, img in enumerate(imgs):
            sheet.paste(_tile(img, tile), (label_width + pad + c * (tile + pad), y))
    with atomic_open(path, "wb") as fh:
        sheet.save(fh, format="PNG")
    return path


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])


def loss_curve(history: Sequence[dict], path: Path, title: str = "diffusion training loss") -> Path | None:
    """Loss per step (and a moving average) as a PNG; None without history."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([h["step"] for h in history])
    loss = np.array([h["loss"] for h in history])
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, loss, lw=0.6, alpha=0.4, label="loss")
    w = max(1, len(loss) // 20)
    if w > 1:
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1:], smooth, lw=1.6, label=f"mean of {w} steps")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(loc="upper left")
    checks = [h for h in history if h.get("kid") is not None]
    if checks:  # generation quality while training (quality_steps)
        ax2 = ax.twinx()
        ax2.plot([h["step"] for h in checks], [h["kid"] for h in checks], "o-", color="C3", ms=3,
                 label="KID vs real validation (lower is better)")
        ax2.set_ylabel("KID", color="C3")
        ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def sample_grid(net, spec: LabelSpec, scheduler_config, path: Path, steps: int = 25, per_row: int = 4,
                guidance: float = 2.0, seed: int = 0, registry: Any = None, text: TextEncoder | None = None,
                device: Any = "cpu", title: str = "") -> Path:
    """A labelled grid: one row per class combination, ``per_row`` samples each."""
    from sd_core.diffusion.plans import grid_rows, label_tensors
    from sd_core.diffusion.rows import caption, label_row
    from sd_core.diffusion.sampling import make_scheduler, sample, to_uint8

    rows = grid_rows(spec)
    items = [{"dataset": spec.datasets[0], "labels": labels} for _, labels in rows for _ in range(per_row)]
    labels = label_tensors(spec, items)
    emb = text.encode([caption(label_row(spec, it), registry) for it in items]) if text else None
    imgs = to_uint8(sample(net, make_scheduler("dpm", scheduler_config), labels, emb, steps=steps,
                           guidance=guidance, seed=seed, device=device)).numpy()
    grid = [(label, imgs[i * per_row:(i + 1) * per_row]) for i, (label, _) in enumerate(rows)]
    return labelled_grid(grid, path, tile=max(48, min(96, spec.image_size)), title=title)
