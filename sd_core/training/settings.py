"""The schema of a training experiment file (``sd train cfg.toml``) and its resolved form.

```toml
[data]
datasets = ["parkinsons"]          # processed data sets (sd preprocess), read from sd.toml's outputs
tasks = ["health", "gender"]       # several data sets: shared tasks or gender/health/age
[model]
backbone = "cnn_light"             # sd backbones
[model.options]                    # the backbone's options
[training]
epochs = 10
```
"""

from __future__ import annotations


from sd_core.config.schema import _fraction, _non_negative, _positive, _string_table, _strings, did_you_mean, Key
from sd_core.errors import ConfigError
from sd_core.config.experiment import Experiment, load_experiment, starter_experiment, validate_options
from sd_core.runs.tracking import LOG_WITH, check_tracker
from sd_core.plugins.specs import CLASSIFICATION


def _weights(v: dict) -> str | None:
    for k, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
            return f"weight of {k!r} must be a non-negative number"
    return None


DATA = {
    "datasets": Key((list,), [], "processed data sets to read", check=_strings),
    "tasks": Key((list,), [], "tasks to learn (one head each)", check=_strings),
    "paths": Key((dict,), {}, "processed folder per data set (default: its output in sd.toml)",
                 check=_string_table),
    "extra_train": Key((list,), [], "more processed folders (e.g. sd generate output) added to training",
                       check=_strings),
    "train_split": Key((str,), "train", "split to train on"),
    "allow_overlap": Key((bool,), False, "accept a subject or image in two of the train, val and test splits, "
                         "or an image twice in one (a leak: refused unless set)"),
    "val_split": Key((str,), "val", "split to evaluate on during training (\"\" = none)"),
    "test_split": Key((str,), "test", "split the best checkpoint is tested on at the end (\"\" = none)"),
    "image_size": Key((int,), 0, "resize images to S×S (0 = as processed)", check=_non_negative),
    "batch_size": Key((int,), 32, "images per step and process", check=_positive),
    "workers": Key((int,), 0, "data loader worker processes (0 = load in the training process)",
                   check=_non_negative),
    "cache_mb": Key((int, float), 2048, "decode images once and keep them when they fit (MB; 0 = never)",
                    check=_non_negative),
    "balanced": Key((bool,), True, "draw (data set × class) groups by inverse frequency"),
    "balance_task": Key((str,), "", "task whose classes are balanced (default: the first classification task)"),
    "max_sampling_weight": Key((int, float), 10.0, "cap on a group's relative sampling weight",
                               check=_positive),
}

MODEL = {
    "backbone": Key((str,), "cnn_light", "backbone name (sd backbones)"),
    "options": Key((dict,), {}, "the backbone's options (sd backbones)"),
    "embedding_dim": Key((int,), 256, "size of the shared embedding", check=_positive),
    "dropout": Key((int, float), 0.3, "dropout before the task heads", check=_fraction),
}

TRAINING = {
    "epochs": Key((int,), 10, "passes over the training split", check=_positive),
    "max_steps": Key((int,), 0, "stop after this many optimizer steps (0 = after the epochs)",
                     check=_non_negative),
    "optimizer": Key((str,), "adamw", "optimizer", choices=("adamw", "adam", "sgd")),
    "lr": Key((int, float), 1e-3, "learning rate", check=_positive),
    "weight_decay": Key((int, float), 0.01, "weight decay", check=_non_negative),
    "momentum": Key((int, float), 0.9, "momentum (sgd)", check=_non_negative),
    "schedule": Key((str,), "cosine", "learning-rate schedule", choices=("constant", "cosine", "linear")),
    "warmup_steps": Key((int,), 0, "linear warm-up steps", check=_non_negative),
    "grad_clip": Key((int, float), 1.0, "clip the gradient norm (0 = off)", check=_non_negative),
    "task_weights": Key((dict,), {}, "loss weight per task (default 1)", check=_weights),
    "mixed_precision": Key((str,), "no", "mixed precision", choices=("no", "fp16", "bf16")),
    "seed": Key((int,), 0, "seed of weights, data order and dropout"),
    "eval_strategy": Key((str,), "epoch", "when to evaluate on the validation split",
                         choices=("epoch", "steps", "none")),
    "eval_steps": Key((int,), 100, "evaluate every N steps (eval_strategy = \"steps\")", check=_positive),
    "save_steps": Key((int,), 0, "also checkpoint every N steps (0 = at evaluations and epoch ends)",
                      check=_non_negative),
    "metric": Key((str,), "", "checkpoint selection: \"<task>/<metric>\" or \"loss\" "
                  "(default: balanced_accuracy of the first classification task, else loss)"),
    "best_k": Key((int,), 2, "best checkpoints kept", check=_positive),
    "early_stopping": Key((int,), 0, "stop after N evaluations without improvement (0 = off)",
                          check=_non_negative),
    "metrics": Key((list,), [], "metrics to compute (default: all that fit each task kind)", check=_strings),
    "output_dir": Key((str,), "", "run folder (default runs/<experiment file name>)"),
    "log_with": LOG_WITH,
}

SCHEMA = {"data": DATA, "model": MODEL, "training": TRAINING}
REQUIRED = {"data": ("datasets", "tasks")}


def load_train_experiment(path, registry) -> Experiment:
    """Read and validate ``sd train``'s experiment file, names included."""
    exp = load_experiment(path, SCHEMA, REQUIRED)
    src = str(exp.source)
    check_tracker(exp["training"]["log_with"], f"{src}: [training]")
    model = exp["model"]
    if model["backbone"] not in registry.backbones:
        raise exp.error("model", "backbone", f"= {model['backbone']!r} is not installed; allowed: "
                        + (", ".join(sorted(registry.backbones)) or "none (pip install sd-backbones)")
                        + did_you_mean(model["backbone"], sorted(registry.backbones)))
    spec = registry.backbones[model["backbone"]]
    model["options"] = validate_options(src, "model.options", model["options"], dict(spec.options))
    training = exp["training"]
    unknown = sorted(set(training["task_weights"]) - set(exp["data"]["tasks"]))
    if unknown:
        raise exp.error("training", "task_weights", f"names task(s) {', '.join(unknown)} not in "
                        f"[data] tasks ({', '.join(exp['data']['tasks'])})")
    for name in training["metrics"]:
        if name not in registry.metrics:
            raise exp.error("training", "metrics", f"has unknown metric {name!r}; allowed: "
                            + ", ".join(sorted(registry.metrics)))
    if training["mixed_precision"] == "fp16":
        import torch

        if not torch.cuda.is_available():
            raise exp.error("training", "mixed_precision", "= \"fp16\" needs a CUDA GPU; use \"bf16\" "
                            "or \"no\" on this machine")
    return exp


def selection_metric(exp: Experiment, tasks) -> tuple[str, bool]:
    """The metric checkpoints are ranked by, as ``"<task>/<metric>"`` or ``"loss"``, and whether
    higher is better."""
    from sd_core.plugins.registry import get_registry

    chosen = exp["training"]["metric"]
    if not chosen:
        first = next((t for t in tasks if t.kind == CLASSIFICATION), None)
        chosen = f"{first.name}/balanced_accuracy" if first else "loss"
        if first and "balanced_accuracy" not in get_registry().metrics:
            chosen = "loss"
    if chosen == "loss":
        return chosen, False
    task, _, metric = chosen.partition("/")
    names = {t.name: t for t in tasks}
    if task not in names or not metric:
        raise ConfigError(f"{exp.source}: [training] metric = {chosen!r}: write \"<task>/<metric>\" "
                          f"with a task of [data] tasks ({', '.join(names)}) or \"loss\"")
    registry = get_registry()
    spec = registry.metrics.get(metric)
    if spec is None or spec.kind != names[task].kind:
        allowed = sorted(m.name for m in registry.metrics.values() if m.kind == names[task].kind)
        raise ConfigError(f"{exp.source}: [training] metric = {chosen!r}: unknown metric for a "
                          f"{names[task].kind} task; allowed: {', '.join(allowed)}")
    return chosen, spec.higher_is_better


def starter(registry) -> str:
    """``sd init --experiment train``: a commented experiment file with every key."""
    ds = next(iter(registry.datasets), "math")
    task = getattr(registry.datasets.get(ds), "main_task", "") or "gender"
    return starter_experiment("sd train experiment file: sd train train.toml", SCHEMA,
                              {"data": {"datasets": [ds], "tasks": [task]}})
