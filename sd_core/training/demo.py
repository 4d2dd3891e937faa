"""The classifier stage of ``sd demo``: one small run per data set on its main task.

The demo writes each run's experiment file next to the runs (``<work>/experiments/``), so a
user can read it, change it and run ``sd train`` on it directly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sd_core.config.toml import toml_value
from sd_core.runs.files import atomic_write_text

#: small and quick on two CPU cores: 64×64 images, the original's light CNN
DEMO_TRAINING = {"epochs": 8, "lr": 2e-3, "weight_decay": 0.01, "schedule": "cosine",
                 "warmup_steps": 5, "seed": 0}


def experiment_text(dataset: str, task: str, processed: Path, run: Path, train_split: str = "train",
                    seed: int | None = None) -> str:
    """The demo's experiment file; ``train_split`` and ``seed`` for runs like it (benchmarks)."""
    training = {**DEMO_TRAINING, **({} if seed is None else {"seed": seed})}
    lines = [
        f"# sd demo: a {task} classifier on the demo's {dataset} data. Run it with",
        f"#   sd train {dataset}-classifier.toml",
        "[data]",
        *([f"train_split = {toml_value(train_split)}"] if train_split != "train" else []),
        f"datasets = {toml_value([dataset])}",
        f"tasks = {toml_value([task])}",
        f"paths = {{ {dataset} = {toml_value(str(processed))} }}",
        "image_size = 64",
        "batch_size = 32",
        "",
        "[model]",
        'backbone = "cnn_light"',
        "embedding_dim = 128",
        "",
        "[training]",
        *[f"{k} = {toml_value(v)}" for k, v in training.items()],
        f"output_dir = {toml_value(str(run))}",
        "",
    ]
    return "\n".join(lines)


def train_demo_classifier(plugin: Any, processed: Path, work: Path, registry: Any, project: Any,
                          console: Any) -> dict[str, Any]:
    """Train (or, when already finished, re-test) the demo classifier of one data set."""
    from sd_core.training.loop import train
    from sd_core.training.report import TrainProgress
    from sd_core.training.settings import load_train_experiment

    task = plugin.main_task
    run = work / "runs" / f"{plugin.name}-classifier"
    cfg = work / "experiments" / f"{plugin.name}-classifier.toml"
    text = experiment_text(plugin.name, task, processed, run)
    resume = (run / "state.json").is_file()
    if resume and (not cfg.is_file() or cfg.read_text() != text):
        resume = False
        import shutil

        shutil.rmtree(run)
    atomic_write_text(cfg, text)
    exp = load_train_experiment(cfg, registry)
    t0 = time.monotonic()
    res = train(exp, registry, project, run, resume=resume, progress=TrainProgress(console))
    spec = registry.task(plugin.name, task)
    return {"dataset": plugin.name, "task": task, "classes": len(spec.classes),
            "test": res.test.get(f"{task}/balanced_accuracy", float("nan")),
            "val": res.val.get(f"{task}/balanced_accuracy", float("nan")),
            "test_n": res.test.get(f"{task}/n", 0), "steps": res.steps,
            "seconds": time.monotonic() - t0, "run": run, "config": cfg}
