"""What plugins contribute, as plain data: tasks, backbones, diffusion model kinds and metrics.

These classes are light (no torch import); heavy objects are built on demand through the
``build`` callables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASK_KINDS = (CLASSIFICATION, REGRESSION)

#: Labels every data set may carry under these names, so that tasks on them work across data sets.
CANONICAL_LABELS = ("gender", "health", "age")
#: Columns of every processed metadata row (``sd_core.preprocess.layout.CORE_COLUMNS`` and
#: ``caption``): a task may read these and its data set's own ``DatasetPlugin.columns``.
ROW_COLUMNS = ("file_name", "split", "dataset", "subject", "gender", "health", "age", "recording",
               "window", "start", "caption")


@dataclass(frozen=True)
class TaskSpec:
    """One prediction target of a data set.

    name:     task name, unique per data set (``gender``, ``seizure``, ``math_condition``).
    dataset:  the data set it belongs to (may be another plugin's data set).
    kind:     ``"classification"`` or ``"regression"``.
    classes:  the class values as they appear in the metadata, in index order (classification).
    columns:  metadata columns the target is read from (default: the task's name). One column:
              its value is the target. Several columns: the target is their values joined with
              ``_`` (for example ``("doing_math", "gender")`` gives ``"1_F"``), which is how
              combined "condition" tasks are expressed. Allowed: the data set's own
              ``DatasetPlugin.columns`` and :data:`ROW_COLUMNS`; others are refused at load.
    description: one line for ``sd tasks``.
    """

    name: str
    dataset: str
    kind: str
    classes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, not {self.kind!r}")
        if self.kind == CLASSIFICATION and len(self.classes) < 2:
            raise ValueError(f"task {self.name!r}: a classification task needs at least two classes")
        if not self.columns:
            object.__setattr__(self, "columns", (self.name,))

    def target_value(self, row: dict[str, Any]) -> str:
        """The raw target value of a metadata row (before mapping to a class index)."""
        return "_".join(str(row[c]) for c in self.columns)


@dataclass(frozen=True)
class OptionSpec:
    """One documented option of a dataset plugin or a backbone.

    ``choices``, when given, are the only allowed values; config validation names them.
    ``path``: the value is a file or folder, relative to the experiment file that sets it.
    """

    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    path: bool = False


@dataclass(frozen=True)
class BackboneSpec:
    """A classifier backbone: maps a (B, 1, R, R) image batch to a (B, embedding_dim) embedding.

    build(embedding_dim: int, image_size: int, **options) -> torch.nn.Module
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
    options: dict[str, OptionSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class DiffusionModelSpec:
    """A kind of denoising network for ``sd diffusion train`` (``[model] kind = name``).

    build(image_size: int, **options) -> a ``sd_core.diffusion.kinds.DenoisingNetwork``: an
    ``nn.Module`` holding a diffusers model, called as ``network(x, t, cond)`` with images ``x``
    (B, 1, S, S) in [-1, 1], timesteps ``t`` (B,) and the conditioning vector ``cond``
    (B, network.cond_dim); returns the prediction (noise or velocity) shaped like ``x``.
    load(folder: Path) -> the same network from ``folder``, written by ``network.save(folder)``.
    check(image_size: int, options: dict) -> why the options do not fit the image size (one
    line, naming the option), or None; called when the experiment file loads (path options
    already absolute), so it must stay cheap (no torch).
    folder:  the run's sub-folder holding the network (``unet``, ``transformer``).
    options: documented options (``OptionSpec``), set in ``[model]`` next to ``kind``.
    """

    name: str
    build: Callable[..., Any]
    load: Callable[..., Any]
    description: str = ""
    options: dict[str, OptionSpec] = field(default_factory=dict)
    check: Callable[..., Any] | None = None
    folder: str = "unet"


@dataclass(frozen=True)
class MetricSpec:
    """A per-task evaluation metric.

    kind: the task kind it applies to (``classification`` or ``regression``).
    build(num_classes: int | None) -> a torchmetrics ``Metric`` (or any object with
    ``update(preds, target)``, ``compute()`` and ``reset()``). For classification, ``preds`` are
    logits of shape (N, num_classes) and ``target`` class indices; for regression both are (N,).
    """

    name: str
    kind: str
    build: Callable[..., Any]
    higher_is_better: bool = True
    description: str = ""


@dataclass(frozen=True)
class FeatureExtractorSpec:
    """A feature space in which ``sd evaluate`` compares generated with real images.

    build(context) -> a callable mapping a float32 image batch (B, 1, S, S) in [-1, 1] to a
    (B, D) feature array (torch tensor or numpy). ``context`` is an
    :class:`sd_core.evaluate.features.FeatureContext`: the evaluation image size S, the real
    folder's preprocessing parameters, the real-trained classifier (built on demand), the seed.
    ``build`` raises :class:`sd_core.errors.SdError` when the space does not apply (the report
    says why and carries on without it).
    """

    name: str
    build: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class SetMetricSpec:
    """A set-level metric comparing a set of real with a set of generated feature vectors.

    compute(real, generated, seed) -> ``{output: value}``, with ``real`` (N, D) and
    ``generated`` (M, D) float64 tensors; ``outputs`` names the keys it returns (e.g. ``kid``
    and ``kid_se``). ``higher_is_better`` applies to the outputs that are scores (an output
    ending in ``_se`` or ``_std`` is an uncertainty). NaN where the sets are too small.
    """

    name: str
    compute: Callable[..., Any]
    outputs: tuple[str, ...] = ()
    higher_is_better: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not self.outputs:
            object.__setattr__(self, "outputs", (self.name,))
