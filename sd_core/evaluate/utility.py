"""Utility: does generated data help a classifier that is tested on real subjects?

Per seed, three ``sd train`` runs with the same backbone, image size and number of steps:

- **real**: trained on the real train split; tested on the real held-out split (the baseline,
  ``trtr``) and on the generated set (**TRTS**, train on real / test on synthetic);
- **synthetic**: trained on the generated set only; tested on real (**TSTR**);
- **augmented**: trained on the real train split plus the generated set; tested on real.

Each figure is the balanced accuracy per task, as mean ± standard deviation over the seeds,
with the per-seed values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sd_core.evaluate.runs import TrainingRecipe, class_recalls, ensure_run, experiment_text, load_classifier

KINDS = ("real", "synthetic", "augmented")


def _summary(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray([x for x in values if x == x], dtype=np.float64)
    return {"mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else math.nan),
            "per_seed": [float(x) for x in values]}


def utility(dataset: str, tasks: Sequence[str], real: Path, gen: Path, gen_split: str,
            recipe: TrainingRecipe, seeds: Sequence[int], out: Path, registry: Any, project: Any,
            test_images: torch.Tensor, test_rows: Sequence[dict], gen_images: torch.Tensor,
            gen_rows: Sequence[dict], advance: Callable[[], None] = lambda: None) -> dict[str, Any]:
    scores: dict[str, dict[str, list[float]]] = {k: {t: [] for t in tasks}
                                                 for k in ("trtr", "trts", "tstr", "augmentation")}
    for seed in seeds:
        runs = {}
        for kind in KINDS:
            run = out / f"{kind}-seed{seed}"
            source = gen if kind == "synthetic" else real
            split = gen_split if kind == "synthetic" else "train"
            extra = [gen] if kind == "augmented" else []
            text = experiment_text(dataset, tasks, source, split, recipe, seed, run, extra)
            runs[kind] = load_classifier(ensure_run(text, run, registry, project), registry)
            advance()
        on_real = runs["real"].predict(test_images)
        on_gen = runs["real"].predict(gen_images)
        on_real_syn = runs["synthetic"].predict(test_images)
        on_real_aug = runs["augmented"].predict(test_images)
        for t in runs["real"].tasks:
            if t.name not in tasks:
                continue
            syn_task = next(x for x in runs["synthetic"].tasks if x.name == t.name)
            aug_task = next(x for x in runs["augmented"].tasks if x.name == t.name)
            scores["trtr"][t.name].append(class_recalls(on_real[t.name], test_rows, t)["balanced_accuracy"])
            scores["trts"][t.name].append(class_recalls(on_gen[t.name], gen_rows, t)["balanced_accuracy"])
            scores["tstr"][t.name].append(class_recalls(on_real_syn[t.name], test_rows, syn_task)["balanced_accuracy"])
            scores["augmentation"][t.name].append(
                class_recalls(on_real_aug[t.name], test_rows, aug_task)["balanced_accuracy"])
    result: dict[str, Any] = {
        "metric": "balanced_accuracy",
        "seeds": list(seeds), "steps": recipe.steps, "backbone": recipe.backbone,
        "image_size": recipe.image_size, "runs": str(out),
    }
    for key, per_task in scores.items():
        result[key] = {t: _summary(v) for t, v in per_task.items()}
    return result
