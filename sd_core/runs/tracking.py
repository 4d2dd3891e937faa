"""Experiment tracking through accelerate's trackers (``[training] log_with``), for ``sd train``
and ``sd diffusion train``: TensorBoard, Weights & Biases, MLflow, … — whatever accelerate
supports and is installed. Off by default. Logs go under the run folder (``<run>/logs``) for the
trackers that write files.

Light: no torch or accelerate import until a run starts tracking.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sd_core.config.schema import Key
from sd_core.errors import ConfigError

#: tracker → the package it needs (accelerate's names)
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
            "aim": "aim", "clearml": "clearml", "dvclive": "dvclive"}

LOG_WITH = Key((str,), "", "experiment tracker through accelerate (\"\" = none): "
               + ", ".join(TRACKERS), choices=("", *TRACKERS))
LOG_DIR = "logs"


def check_tracker(name: str, where: str) -> None:
    """A clear error when the tracker's package is missing (before any training starts)."""
    if not name:
        return
    package = TRACKERS[name]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"{where}: log_with = {name!r} needs the {package} package "
                          f"(pip install {package}), or set log_with = \"\"")


def accelerator_kwargs(name: str, run: Path) -> dict[str, Any]:
    """Extra ``Accelerator(...)`` arguments for tracking into ``run``."""
    if not name:
        return {}
    return {"log_with": name, "project_dir": str(run / LOG_DIR)}


def hyperparameters(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The experiment as flat ``section/key`` scalars (what every tracker accepts)."""
    out: dict[str, Any] = {}
    for section, values in sections.items():
        for key, value in values.items():
            if isinstance(value, Mapping):
                for k, v in value.items():
                    out[f"{section}/{key}/{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
            else:
                out[f"{section}/{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def start(acc: Any, name: str, project: str, sections: Mapping[str, Mapping[str, Any]]) -> None:
    if name:
        acc.init_trackers(project, config=hyperparameters(sections))


def log(acc: Any, name: str, values: Mapping[str, float], step: int) -> None:
    if name:
        acc.log({k: float(v) for k, v in values.items() if isinstance(v, (int, float))}, step=step)


def end(acc: Any, name: str) -> None:
    if name:
        acc.end_training()
