"""Small processed data sets written straight in the processed layout, for training tests.

Images carry a learnable label effect: a bright horizontal band whose row depends on the class
of ``effect_column``, over noise, like a spectral peak that moves with the condition.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from sd_core.preprocess.layout import CORE_COLUMNS


def write_processed(out: Path, dataset: str, subjects: Mapping[str, Mapping[str, str]],
                    window_labels: Sequence[Mapping[str, str]], effect_column: str,
                    effect_rows: Mapping[str, int], size: int = 32, seed: int = 0,
                    columns: Sequence[str] = ()) -> list[dict]:
    """Write every subject × window label into ``out`` (split from each subject's ``split``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for sid, subj in subjects.items():
        for i, labels in enumerate(window_labels):
            row = {"dataset": dataset, "subject": sid, "recording": f"{sid}_r", "window": str(i),
                   "start": f"{2.0 * i:.1f}", "caption": f"an EEG spectrogram of subject {sid}"}
            row.update({k: v for k, v in subj.items()})
            row.update(labels)
            img = rng.normal(90, 25, (size, size))
            band = effect_rows[row[effect_column]]
            img[band:band + max(2, size // 8)] += 110
            img = np.clip(img, 0, 255).astype(np.uint8)
            row["file_name"] = f"{row['split']}/{sid}/{sid}_r-{i}.png"
            (out / row["file_name"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, "L").save(out / row["file_name"])
            rows.append(row)
    cols = [*CORE_COLUMNS, *columns, "caption"]
    for split in ("train", "val", "test", None):
        part = [r for r in rows if split is None or r["split"] == split]
        name = f"{split}-metadata.csv" if split else "metadata.csv"
        with open(out / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(part)
    return rows


def math_like(out: Path, size: int = 32, windows: int = 12, seed: int = 0) -> list[dict]:
    """A ``math`` data set: 6 subjects (4 train, 1 val, 1 test), rest/arithmetic windows."""
    subjects = {
        f"Subject0{i}": {"split": split, "gender": g, "health": "H", "age": str(20 + 3 * i),
                         "count_quality": str(i % 2)}
        for i, (split, g) in enumerate([("train", "F"), ("train", "M"), ("train", "F"),
                                        ("train", "M"), ("val", "F"), ("test", "M")])
    }
    windows_ = [{"doing_math": str(i % 2)} for i in range(windows)]
    return write_processed(out, "math", subjects, windows_, "doing_math", {"0": size // 6, "1": size // 2},
                           size, seed, columns=("doing_math", "count_quality"))


def parkinsons_like(out: Path, size: int = 32, windows: int = 8, seed: int = 1) -> list[dict]:
    """A ``parkinsons`` data set: 6 subjects, the health effect in the band's row."""
    people = [("train", "PD", "F"), ("train", "H", "M"), ("train", "PD", "M"), ("train", "H", "F"),
              ("val", "PD", "M"), ("val", "H", "F"), ("test", "PD", "F"), ("test", "H", "M")]
    subjects = {f"sub-00{i}": {"split": s, "health": h, "gender": g, "age": str(55 + i)}
                for i, (s, h, g) in enumerate(people)}
    return write_processed(out, "parkinsons", subjects, [{}] * windows, "health",
                           {"H": size // 6, "PD": size // 2}, size, seed)
