"""Classifier runs of ``sd evaluate``, made by the training loop of ``sd train``.

The real-trained classifier (when no ``--classifier RUN`` is given) and the utility runs are
ordinary ``sd train`` runs: an experiment file is written beside the run and trained with
:func:`sd_core.training.loop.train`, then loaded with :mod:`sd_core.training.saved`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from sd_core.config.toml import toml_value
from sd_core.errors import SdError
from sd_core.runs.files import atomic_write_text


@dataclass(frozen=True)
class TrainingRecipe:
    """The same backbone and steps for every run of one evaluation."""

    image_size: int
    steps: int = 150
    batch_size: int = 32
    backbone: str = "cnn_light"
    #: a light CNN: three 3×3 stages, so that 2,000 images at 128×128 train and embed in seconds
    options: Mapping[str, Any] = field(default_factory=lambda: {"channels": [4, 8, 16], "kernels": [3, 3, 3],
                                                                "hidden": [64], "pool_size": 4})
    embedding_dim: int = 64
    lr: float = 2e-3


def experiment_text(dataset: str, tasks: Sequence[str], source: Path, train_split: str,
                    recipe: TrainingRecipe, seed: int, run: Path, extra_train: Sequence[Path] = ()) -> str:
    opts = ", ".join(f"{k} = {toml_value(v)}" for k, v in recipe.options.items())
    return "\n".join([
        "# written by sd evaluate: an sd train experiment (run it with `sd train FILE`)",
        "[data]",
        f"datasets = {toml_value([dataset])}",
        f"tasks = {toml_value(list(tasks))}",
        f"paths = {{ {dataset} = {toml_value(str(source))} }}",
        f"extra_train = {toml_value([str(p) for p in extra_train])}",
        f"train_split = {toml_value(train_split)}",
        'val_split = ""',
        'test_split = ""',
        f"image_size = {recipe.image_size}",
        f"batch_size = {recipe.batch_size}",
        "",
        "[model]",
        f"backbone = {toml_value(recipe.backbone)}",
        f"embedding_dim = {recipe.embedding_dim}",
        f"options = {{ {opts} }}",
        "",
        "[training]",
        "epochs = 100000",
        f"max_steps = {recipe.steps}",
        f"lr = {recipe.lr}",
        "warmup_steps = 5",
        'schedule = "cosine"',
        'eval_strategy = "none"',
        f"seed = {seed}",
        f"output_dir = {toml_value(str(run))}",
        "",
    ])


#: Written into every classifier run an evaluation makes: only such runs are ever replaced.
MARKER = ".sd-evaluate"


def ensure_run(text: str, run: Path, registry: Any, project: Any, threads: int | None = 1) -> Path:
    """Train the experiment ``text`` into ``run`` (a run left there by an earlier evaluation is
    replaced: the data it was trained on may have changed since).

    threads: torch intra-op threads while training (None = leave as is). These classifiers are
    small; on a busy machine waiting OpenMP threads make their steps many times slower.
    """
    from sd_core.training.loop import train
    from sd_core.training.settings import load_train_experiment

    cfg = run.parent / f"{run.name}.toml"
    ours = (run / MARKER).is_file()
    for path in (run, cfg):
        if (path.exists() or path.is_symlink()) and not ours:
            raise SdError(f"{path} exists and was not made by sd evaluate; sd does not replace it "
                          "(choose another --out, or move it away)")
    if run.exists():
        shutil.rmtree(run)  # an earlier evaluation's run: its data may have changed since
    run.mkdir(parents=True)
    (run / MARKER).write_text("made by sd evaluate; replaced by the next evaluation into this folder\n")
    atomic_write_text(cfg, text)
    exp = load_train_experiment(cfg, registry)
    if project is None:
        from sd_core.config.project import load_config

        project = load_config(None)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        train(exp, registry, project, run)
    finally:
        torch.set_num_threads(before)
    return run


@dataclass
class Classifier:
    """A trained run's model: embeddings (the backbone) and per-task outputs."""

    model: Any
    tasks: list
    info: dict
    run: Path

    @property
    def image_size(self) -> int:
        return int(self.info["image_size"])

    def _batches(self, images: torch.Tensor, batch: int):
        from sd_core.data.images import to_float

        for i in range(0, len(images), batch):
            x = to_float(images[i:i + batch])
            if x.shape[-1] != self.image_size:
                x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size),
                                                    mode="bilinear", antialias=True, align_corners=False)
            yield x

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch: int = 64) -> np.ndarray:
        """(N, embedding_dim) from uint8 images (N, 1, S, S)."""
        self.model.eval()
        out = [self.model.backbone(x).double() for x in self._batches(images, batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, int(self.info["embedding_dim"])))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 64) -> dict[str, torch.Tensor]:
        self.model.eval()
        outs = [self.model(x) for x in self._batches(images, batch)]
        return {k: torch.cat([o[k] for o in outs]).float() for k in outs[0]} if outs else {}


    @torch.no_grad()
    def outputs_from_embeddings(self, z) -> dict[str, torch.Tensor]:
        """The task heads on embeddings from :meth:`embed` (what :meth:`predict` gives, without a
        second pass through the backbone: dropout is off in evaluation)."""
        from sd_core.plugins.specs import CLASSIFICATION

        self.model.eval()
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        out = {}
        for name, head in self.model.heads.items():
            y = head(z).float()
            out[name] = y if self.model.kinds[name] == CLASSIFICATION else y.squeeze(-1)
        return out


def load_classifier(run: Path, registry: Any) -> Classifier:
    from sd_core.training.saved import load_run_model

    model, tasks, info, _ = load_run_model(Path(run), registry)
    return Classifier(model, tasks, info, Path(run))


def class_recalls(logits: torch.Tensor, rows: Sequence[Mapping[str, Any]], task: Any) -> dict[str, Any]:
    """Balanced accuracy and per-class recall of a classifier's ``logits`` against the labels
    of ``rows`` for ``task`` (a ResolvedTask of the classifier)."""
    y = torch.tensor([task.target(r) for r in rows], dtype=torch.long)
    keep = y >= 0
    pred = logits.argmax(-1)
    recall: dict[str, float] = {}
    for i, c in enumerate(task.classes):
        sel = keep & (y == i)
        if sel.any():
            recall[c] = float((pred[sel] == i).double().mean())
    balanced = float(np.mean(list(recall.values()))) if recall else float("nan")
    accuracy = float((pred[keep] == y[keep]).double().mean()) if keep.any() else float("nan")
    return {"balanced_accuracy": balanced, "accuracy": accuracy, "per_class_recall": recall,
            "n": int(keep.sum()), "chance": 1.0 / max(1, task.num_classes)}
