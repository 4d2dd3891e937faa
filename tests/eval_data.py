"""Spectrogram-like processed sets with known band structure, for the tests of ``sd evaluate``.

Images are 32×32 with 4 channel strips of 8 columns (fs 125 Hz, 500-sample windows, log bins).
Each row's grey level follows a 1/f-like profile over its frequency; healthy windows carry an
alpha bump and Parkinson's windows a theta bump, as in the demo data. ``shift`` adds grey levels
to every row of one band.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

PARAMS = {"format": 1, "dataset": "parkinsons", "fs": 125.0, "nsamps": 500, "overlap": 0.5,
          "resolution": 32, "bins": "log", "units": "uV", "channels": ["Fp1", "Fz", "Cz", "O1"],
          "splits": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 0, "split_file_sha256": None,
          "options": {}}
SIZE = 32


def row_freqs(params: dict = PARAMS) -> np.ndarray:
    from sd_core.evaluate.bandpower import geometry

    return geometry(params, params["resolution"]).freqs


def images(health: str, n: int, rng: np.random.Generator, shift: tuple[str, float] | None = None,
           params: dict = PARAMS) -> np.ndarray:
    """n images of one class (uint8, n × R × R)."""
    from sd_core.evaluate.bandpower import BANDS

    size = params["resolution"]
    f = np.nan_to_num(row_freqs(params), nan=0.1)
    base = 200 - 35 * np.log10(1 + f)
    peak = 10.0 if health == "H" else 6.0
    bump = 45 * np.exp(-0.5 * ((f - peak) / 1.5) ** 2)
    out = np.empty((n, size, size))
    for i in range(n):
        gain = rng.normal(0, 6)
        img = (base + bump + gain)[:, None] + rng.normal(0, 8, (size, size))
        if shift is not None:
            band = next(b for b in BANDS if b[0] == shift[0])
            rows = (f >= band[1]) & (f < band[2])
            img[rows] += shift[1]
        out[i] = img
    return np.clip(out, 0, 255).astype(np.uint8)


def write_set(root: Path, groups: Sequence[tuple[str, str, str, np.ndarray]], params: dict | None = PARAMS,
              generation: dict | None = None) -> Path:
    """groups: (split, subject, health, images). Writes PNGs, metadata CSVs and preprocess.json."""
    from sd_core.preprocess.layout import csv_text, image_rel_path, metadata_columns
    from sd_core.runs.files import atomic_write_text

    rows = []
    for split, subject, health, imgs in groups:
        for i, img in enumerate(imgs):
            rel = image_rel_path(split, subject, "task-Rest", i)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / rel)
            rows.append({"file_name": rel, "split": split, "dataset": "parkinsons", "subject": subject,
                         "gender": "F" if hash(subject) % 2 else "M", "health": health, "age": 60,
                         "recording": "task-Rest", "window": i, "start": 2.0 * i,
                         "caption": f"an EEG spectrogram of a {health} subject"})
    cols = metadata_columns([], rows)
    for split in sorted({r["split"] for r in rows}):
        atomic_write_text(root / f"{split}-metadata.csv", csv_text(cols, [r for r in rows if r["split"] == split]))
    atomic_write_text(root / "metadata.csv", csv_text(cols, rows))
    if params is not None:
        (root / "preprocess.json").write_text(json.dumps({"parameters": params}))
    if generation is not None:
        (root / "generation.json").write_text(json.dumps(generation))
    return root


def real_set(root: Path, seed: int = 0, per_subject: int = 10, params: dict = PARAMS,
             subjects: dict | None = None) -> Path:
    rng = np.random.default_rng(seed)
    groups = []
    for split, count in (subjects or {"train": 4, "val": 1, "test": 2}).items():
        for h in ("H", "PD"):
            for s in range(count):
                groups.append((split, f"sub-{split}{h}{s}", h, images(h, per_subject, rng, params=params)))
    return write_set(root, groups, params=params)


def generated_set(root: Path, seed: int = 1, per_class: int = 20, shift=None, labels: str = "right",
                  params: dict = PARAMS) -> Path:
    """labels: "right", or "shuffled" (each image's label drawn at random)."""
    rng = np.random.default_rng(seed)
    groups = []
    for h in ("H", "PD"):
        imgs = images(h, per_class, rng, shift, params=params)
        if labels == "shuffled":
            for i, img in enumerate(imgs):
                lab = ("H", "PD")[rng.integers(2)]
                groups.append(("train", f"gen-{lab}-{h}{i}", lab, img[None]))
        else:
            groups.append(("train", f"gen-{h}", h, imgs))
    return write_set(root, groups, params=None,
                     generation={"split": "train", "image_size": params["resolution"]})


def noise_set(root: Path, seed: int = 2, per_class: int = 20) -> Path:
    rng = np.random.default_rng(seed)
    groups = [("train", f"gen-{h}", h, rng.integers(0, 256, (per_class, SIZE, SIZE), dtype=np.uint8))
              for h in ("H", "PD")]
    return write_set(root, groups, params=None)


def copies_set(root: Path, real: Path) -> Path:
    """Copies of real training images, labelled as generated."""
    from sd_core.data.images import load_image
    from sd_core.data.sources import Source, read_metadata

    rows = read_metadata(Source(real), "train")
    groups = []
    for h in ("H", "PD"):
        picked = [r for r in rows if r["health"] == h][:20]
        groups.append(("train", f"gen-{h}", h, np.stack([load_image(r, None) for r in picked])))
    return write_set(root, groups, params=None)
