"""A multi-task classifier: a registered backbone, dropout, and one linear head per task."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from sd_core.data.tasks import ResolvedTask
from sd_core.errors import ConfigError
from sd_core.plugins.specs import CLASSIFICATION


class MultiTaskModel(nn.Module):
    """``forward(images) -> {task: output}``: logits (B, classes) or a standardised value (B,).

    ``forward(images, task="gender")`` returns that task's output alone. ``tasks`` holds the
    resolved tasks (classes in index order; mean and std of a regression target).
    """

    def __init__(self, backbone: nn.Module, tasks: Sequence[ResolvedTask], embedding_dim: int,
                 dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.task_names = [t.name for t in tasks]
        self.heads = nn.ModuleDict({
            t.name: nn.Linear(embedding_dim, t.num_classes if t.kind == CLASSIFICATION else 1)
            for t in tasks
        })
        self.kinds = {t.name: t.kind for t in tasks}
        self.tasks = list(tasks)
        self.image_size: int | None = None  # set by build_model

    def forward(self, images: torch.Tensor, task: str | None = None):
        if task is not None and task not in self.heads:
            raise KeyError(f"the model has no task {task!r}; its tasks: {', '.join(self.task_names)}")
        z = self.dropout(self.backbone(images))
        out = {}
        for name, head in self.heads.items():
            if task is not None and name != task:
                continue
            y = head(z)
            out[name] = y if self.kinds[name] == CLASSIFICATION else y.squeeze(-1)
        return out if task is None else out[task]


def build_model(registry: Any, backbone: str, options: Mapping[str, Any], tasks: Sequence[ResolvedTask],
                embedding_dim: int, dropout: float, image_size: int) -> MultiTaskModel:
    spec = registry.backbone(backbone)
    try:
        net = spec.build(embedding_dim=embedding_dim, image_size=image_size, **dict(options))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"backbone {backbone!r} cannot be built with options {dict(options)} at "
                          f"image size {image_size}: {exc}") from None
    model = MultiTaskModel(net, tasks, embedding_dim, dropout)
    model.image_size = image_size
    return model
