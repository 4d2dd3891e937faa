"""Using a finished run: rebuild its model from ``run.json`` and evaluate it on any split."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import torch

from sd_core.data.images import ProcessedImages
from sd_core.data.select import read_rows
from sd_core.data.sources import Source
from sd_core.data.tasks import ResolvedTask
from sd_core.errors import SdError
from sd_core.plugins.specs import CLASSIFICATION
from sd_core.runs.files import atomic_write_text
from sd_core.training import checkpoint as ckpt
from sd_core.training.evaluate import predict
from sd_core.training.losses import task_losses
from sd_core.training.metrics import compute_metrics
from sd_core.training.model import build_model


def load_run_model(run: Path, registry: Any, checkpoint: str = ""):
    """The model of a run with the weights of ``checkpoint`` (default: the best one)."""
    if not run.is_dir():
        raise SdError(f"run folder {run} does not exist")
    info = ckpt.read_json(run / "run.json")
    tasks = [ResolvedTask.from_dict(t) for t in info["tasks"]]
    model = build_model(registry, info["backbone"], info["options"], tasks, info["embedding_dim"],
                        info["dropout"], info["image_size"])
    state = ckpt.RunState.read(run)
    name = checkpoint or state.best_name()
    folder = run / ckpt.CHECKPOINTS / name
    if not name or not folder.is_dir():
        have = sorted(p.name for p in (run / ckpt.CHECKPOINTS).glob("step-*")) if (run / ckpt.CHECKPOINTS).is_dir() else []
        raise SdError(f"{run}: no checkpoint {name or '(none saved yet)'}; available: "
                      + (", ".join(have) or "none"))
    ckpt.load_checkpoint(folder, model)
    model.eval()
    return model, tasks, info, name


def evaluate_run(run: Path, registry: Any, split: str, data_dirs: Sequence[Path] = (),
                 checkpoint: str = "", batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a saved run on ``split`` of its own data sets or of other folders in the
    processed layout (e.g. a generated set). Writes ``eval-<split>.json`` and the predictions."""
    model, tasks, info, name = load_run_model(run, registry, checkpoint)
    if data_dirs:
        sources = [Source(Path(d)) for d in data_dirs]
        rows = read_rows(sources, split, allowed=info["datasets"])
    else:
        sources = [Source(Path(p), ds) for ds, p in info["sources"].items()]
        rows = read_rows(sources, split)
    if not rows:
        raise SdError(f"split {split!r} has no rows in "
                      + ", ".join(str(s.root) for s in sources))
    data = ProcessedImages(rows, tasks, info["image_size"])
    with torch.no_grad():
        index, outputs = predict(None, model, data, batch_size)
    targets = {k: v[index] for k, v in data.targets.items()}
    losses = task_losses(outputs, targets)
    metrics = {"loss": float(sum(losses.values())), **compute_metrics(registry, tasks, outputs, targets)}
    by_dataset = {}
    datasets = sorted({r.get("dataset", "") for r in rows})
    if len(datasets) > 1:
        for ds in datasets:
            keep = torch.tensor([r.get("dataset", "") == ds for r in rows])
            by_dataset[ds] = compute_metrics(registry, tasks, {k: v[keep] for k, v in outputs.items()},
                                             {k: v[keep] for k, v in targets.items()})
    suffix = split if not data_dirs else f"{split}-{Path(data_dirs[0]).name}"
    result = {"checkpoint": name, "split": split, "sources": [str(s.root) for s in sources],
              "metrics": metrics, "by_dataset": by_dataset}
    ckpt.write_json(run / f"eval-{suffix}.json", result)
    atomic_write_text(run / f"predictions-{suffix}.csv", predictions_csv(rows, tasks, outputs))
    return result


def predictions_csv(rows: Sequence[dict], tasks: Sequence[ResolvedTask], outputs: dict) -> str:
    """One line per image: its labels and the model's prediction per task."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["file_name", "dataset", "subject"]
    for t in tasks:
        cols += [t.name, f"pred_{t.name}"] + ([f"p_{t.name}_{c}" for c in t.classes] if t.kind == CLASSIFICATION else [])
    w.writerow(cols)
    probs = {t.name: outputs[t.name].softmax(-1) for t in tasks if t.kind == CLASSIFICATION}
    for i, r in enumerate(rows):
        line = [r.get("file_name", ""), r.get("dataset", ""), r.get("subject", "")]
        for t in tasks:
            if t.kind == CLASSIFICATION:
                p = probs[t.name][i]
                line += [t.raw_value(r), t.classes[int(p.argmax())], *[f"{float(x):.4f}" for x in p]]
            else:
                line += [t.raw_value(r), f"{float(outputs[t.name][i]) * t.std + t.mean:.3f}"]
        w.writerow(line)
    return buf.getvalue()
