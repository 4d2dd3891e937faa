"""The public Python API: what a notebook imports (``from sd_core import api``).

Named after the original project's classifier scaffolding, so that its notebooks port over. Every
function is a thin layer over the modules the CLI uses (the same data set class, the same model,
the same training loop); docs/api.md shows them in one worked example.

- :func:`load_settings`: the resolved project file ``sd.toml`` (``sd config show``).
- :func:`build_task_specs`: tasks resolved against one or several data sets (``sd tasks``).
- :func:`build_dataset`: a torch dataset over a split of processed data sets; samples are dicts
  with ``"image"``, ``"targets"`` (keyed by task), ``"row"`` and ``"index"``, and a plain
  ``torch.utils.data.DataLoader`` batches them.
- :class:`ClassifierConfig` and :func:`build_classifier`: a backbone with one head per task;
  ``model(x)`` returns outputs keyed by task, ``model(x, task="gender")`` one of them.
- :func:`loss`: the masked multi-task loss ``sd train`` minimises.
- :func:`train` (``sd train``) and :func:`load_classifier` (a finished run's model).

This module imports torch only when a function needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from sd_core.config.project import Config
    from sd_core.data.images import ProcessedImages
    from sd_core.data.tasks import ResolvedTask
    from sd_core.training.loop import TrainResult
    from sd_core.training.model import MultiTaskModel

__all__ = ["load_settings", "build_task_specs", "build_dataset", "ClassifierConfig", "build_classifier",
           "loss", "load_classifier", "train"]


def _registry():
    from sd_core.plugins.registry import get_registry

    return get_registry()


def _names(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def load_settings(config: str | os.PathLike | None = None) -> Config:
    """The resolved project file: ``config``, else ``$SD_CONFIG``, else ``./sd.toml``, else the
    built-in defaults. ``settings.output_dir(name)`` is where a processed data set is read from,
    ``settings.preprocess_params(name)`` how it is made."""
    from sd_core.config.project import load_config

    return load_config(config)


def build_task_specs(dataset: str | Sequence[str], tasks: Sequence[str],
                     rows: Sequence[Mapping[str, Any]] = ()) -> list[ResolvedTask]:
    """``tasks`` (names, as ``sd tasks`` lists them) resolved against one data set or several.

    Each task has ``name``, ``kind`` ("classification" or "regression"), ``classes`` (in index
    order) and ``columns`` (per data set, the metadata columns its target is read from). A
    canonical label no plugin of these data sets declares (``gender``, ``health``) takes its
    classes from ``rows``; :func:`build_dataset` passes its own.
    """
    from sd_core.data.tasks import resolve_tasks

    return resolve_tasks(_names(tasks), _names(dataset), _registry(), rows, where="tasks")


def build_dataset(settings: Config | None = None, *, dataset_name: str | Sequence[str], split: str = "train",
                  tasks: Sequence[str | ResolvedTask] = (), path: str | os.PathLike | None = None,
                  image_size: int | None = None, cache_mb: float = 2048) -> ProcessedImages:
    """The ``split`` of processed data set(s) ``dataset_name`` as a torch dataset.

    Read from ``path`` (one data set), else from each data set's output folder in ``settings``
    (default: :func:`load_settings`). ``tasks``: names, or the resolved tasks of another split
    (``train_set.tasks``) so that class indices and the standardisation of a regression target
    are the training split's; names are resolved and regression targets standardised on this
    split's rows. ``image_size`` resizes (default: as stored). ``dataset[i]`` is a dict with
    ``"image"`` (float32 (1, S, S) in [-1, 1]), ``"targets"`` ({task: class index, -1 when the
    row has no label, or a standardised float, NaN when missing}), ``"row"`` (the metadata row)
    and ``"index"``; ``len``, ``.tasks``, ``.rows`` and ``.size`` describe the set.
    """
    from sd_core.data.images import ProcessedImages
    from sd_core.data.select import read_rows, sources_for
    from sd_core.data.tasks import ResolvedTask, standardised
    from sd_core.errors import ConfigError, DatasetError

    datasets = _names(dataset_name)
    settings = settings if settings is not None else load_settings()
    registry = _registry()
    if path is not None and len(datasets) != 1:
        raise ConfigError("build_dataset: path= reads one data set; name one in dataset_name")
    overrides = {datasets[0]: Path(path)} if path is not None else {}
    sources = sources_for(datasets, overrides, settings, registry, where="dataset_name")
    rows = read_rows(sources, split)
    if not rows:
        raise DatasetError(f"split {split!r} of {', '.join(datasets)} has no rows ("
                           + ", ".join(str(s.root) for s in sources) + ")")
    if not tasks:
        raise ConfigError("build_dataset: name at least one task in tasks (sd tasks lists them)")
    if all(isinstance(t, ResolvedTask) for t in tasks):
        resolved = list(tasks)
    elif any(isinstance(t, ResolvedTask) for t in tasks):
        raise ConfigError("build_dataset: tasks are either all names or all resolved tasks")
    else:
        resolved = [standardised(t, rows) for t in build_task_specs(datasets, tasks, rows)]
    return ProcessedImages(rows, resolved, image_size, cache_mb)


@dataclass
class ClassifierConfig:
    """What :func:`build_classifier` builds (the ``[model]`` section of an experiment file).

    backbone:      a name of ``sd backbones``; ``options`` its options (defaults filled in).
    tasks:         resolved tasks (``build_task_specs`` or ``dataset.tasks``): one head each.
    embedding_dim: size of the shared embedding; ``dropout`` before the heads.
    image_size:    S of the (B, 1, S, S) input (``dataset.size``).
    """

    backbone: str = "cnn_light"
    tasks: Sequence[ResolvedTask] = ()
    embedding_dim: int = 256
    dropout: float = 0.3
    options: Mapping[str, Any] = field(default_factory=dict)
    image_size: int = 256


def build_classifier(config: ClassifierConfig) -> MultiTaskModel:
    """A backbone with one linear head per task (the model ``sd train`` trains).

    ``model(x)`` → ``{task: logits (B, classes) | standardised value (B,)}``;
    ``model(x, task="gender")`` → that task's output. ``model.tasks`` are its tasks.
    """
    from sd_core.config.experiment import validate_options
    from sd_core.data.tasks import ResolvedTask
    from sd_core.errors import ConfigError
    from sd_core.training.model import build_model

    if not config.tasks:
        raise ConfigError("ClassifierConfig.tasks: give the resolved tasks (build_task_specs(...) "
                          "or dataset.tasks)")
    bad = [t for t in config.tasks if not isinstance(t, ResolvedTask)]
    if bad:
        raise ConfigError(f"ClassifierConfig.tasks: {bad[0]!r} is not a resolved task; use "
                          "build_task_specs(dataset, names) or dataset.tasks")
    registry = _registry()
    spec = registry.backbone(config.backbone)
    options = validate_options("ClassifierConfig", "options", dict(config.options), dict(spec.options))
    return build_model(registry, config.backbone, options, list(config.tasks), int(config.embedding_dim),
                       float(config.dropout), int(config.image_size))


def loss(outputs: Mapping[str, Any], targets: Mapping[str, Any],
         weights: Mapping[str, float] | None = None):
    """The loss ``sd train`` minimises: per task cross-entropy (classification) or mean squared
    error (standardised regression) over the rows that have a target, summed with ``weights``
    (default 1 per task)."""
    from sd_core.training.losses import task_losses, total_loss

    return total_loss(task_losses(outputs, targets), weights or {})


def load_classifier(run: str | os.PathLike, checkpoint: str = "") -> MultiTaskModel:
    """The model of a finished (or interrupted) ``sd train`` run, in eval mode, with the weights of
    ``checkpoint`` (default: the best). ``model.tasks`` and ``model.image_size`` say what it
    expects; ``model.run_info`` is the run's ``run.json``."""
    from sd_core.training.saved import load_run_model

    model, _tasks, info, name = load_run_model(Path(run), _registry(), checkpoint)
    model.run_info = {**info, "checkpoint": name}
    return model


def _plain(value: Any) -> Any:
    """Paths as strings, through nested mappings and lists (TOML holds no Path)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def train(config_or_path: str | os.PathLike | Mapping[str, Any], out: str | os.PathLike | None = None,
          *, resume: bool = False, settings: Config | None = None) -> TrainResult:
    """Train a classifier as ``sd train`` does, from an experiment file or its content as a mapping
    (``{"data": {...}, "model": {...}, "training": {...}}``, checked like the file).

    ``out``: the run folder (default ``[training] output_dir``, else ``runs/<file name>``; a
    mapping counts as ``python-experiment.toml`` in the working folder). ``resume`` continues an
    interrupted run. Returns the result: ``run`` (folder), ``steps``, ``best`` (checkpoint),
    ``val`` and ``test`` metrics, ``history``.
    """
    from sd_core.training.loop import check_runnable
    from sd_core.training.loop import train as run_training
    from sd_core.training.settings import load_train_experiment

    registry = _registry()
    source = _plain(config_or_path) if isinstance(config_or_path, Mapping) else config_or_path
    exp = load_train_experiment(source, registry)
    check_runnable(exp)
    settings = settings if settings is not None else load_settings()
    if out is not None:
        run = Path(out).expanduser().resolve()
    elif exp["training"]["output_dir"]:
        run = exp.path(exp["training"]["output_dir"])
    else:
        run = Path.cwd() / "runs" / exp.source.stem
    return run_training(exp, registry, settings, run, resume=resume)
