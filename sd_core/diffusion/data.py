"""The training data of a diffusion run: rows, resolved conditions, images, sampling weights,
and caption embeddings."""

from __future__ import annotations

import sys
from typing import Any

import torch

from sd_core.config.experiment import Experiment
from sd_core.data.sampling import balanced_weights, dataset_class_groups
from sd_core.data.tasks import check_trainable, resolve_tasks, standardised
from sd_core.diffusion.model import TextEncoder
from sd_core.errors import ConfigError, DatasetError
from sd_core.plugins.specs import CLASSIFICATION


def load_training_data(exp: Experiment, project: Any, registry: Any):
    """Rows, resolved (standardised) conditions and the image dataset of the experiment."""
    from sd_core.data.images import ProcessedImages
    from sd_core.data.select import read_rows, sources_for

    d = exp["data"]
    src = str(exp.source)
    overrides = {k: exp.path(v) for k, v in d["paths"].items()}
    sources = sources_for(d["datasets"], overrides, project, registry, where=f"{src}: [data] datasets")
    rows = read_rows(sources, d["split"])
    if not rows:
        raise DatasetError(f"no {d['split']} rows in {', '.join(str(s.root) for s in sources)}")
    tasks = resolve_tasks(d["conditions"], d["datasets"], registry, rows, where=f"{src}: [data] conditions")
    tasks = [standardised(t, rows) for t in tasks]
    check_trainable(tasks, rows, d["split"])
    images = ProcessedImages(rows, tasks, d["image_size"], cache_mb=d["cache_mb"])
    weights = None
    if d["balanced"]:
        by = {t.name: t for t in tasks}
        if d["balanced"] not in by or by[d["balanced"]].kind != CLASSIFICATION:
            allowed = [t.name for t in tasks if t.kind == CLASSIFICATION]
            raise ConfigError(f"{src}: [data] balanced = {d['balanced']!r} must be a classification "
                              f"condition; allowed: {', '.join(allowed) or 'none'}")
        t = by[d["balanced"]]
        from sd_core.meta import double_weighting

        warning = double_weighting([r["_root"] for r in rows], d["split"])
        if warning:  # a meta set weighted already: say so rather than weigh twice
            sys.stderr.write(f"warning: {src}: [data] balanced: {warning}\n")
        else:
            weights = balanced_weights(dataset_class_groups(rows, t), d["max_sampling_weight"])
    return rows, tasks, images, weights


def caption_table(rows, registry, encoder: TextEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption embeddings: (unique captions, H) and the index of each row's caption."""
    from sd_core.diffusion.rows import caption

    texts = [r.get("caption") or caption(r, registry) for r in rows]
    unique = sorted(set(texts))
    pos = {t: i for i, t in enumerate(unique)}
    return encoder.encode(unique), torch.tensor([pos[t] for t in texts], dtype=torch.long)
