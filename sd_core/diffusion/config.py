"""The experiment file of ``sd diffusion train`` (sections ``[data]``, ``[model]``, ``[training]``).

``[model]`` holds ``kind`` (a registered model kind, ``sd diffusion models``), the keys every kind
has, and the kind's own options.

Light: no torch import, so that the schema can be documented and validated cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sd_core.config.schema import _fraction, _non_negative, _positive, _string_table, _strings, did_you_mean, Key, option_keys
from sd_core.config.toml import read_toml
from sd_core.errors import ConfigError
from sd_core.config.experiment import Experiment, load_experiment, starter_experiment
from sd_core.runs.tracking import LOG_WITH, check_tracker


DATA = {
    "datasets": Key((list,), [], "data sets to train on (see `sd datasets`)", check=_strings),
    "conditions": Key((list,), [], "tasks to condition on, e.g. [\"health\", \"gender\", \"age\"] "
                      "(see `sd tasks`); classification tasks get embeddings, regression tasks "
                      "(age) a continuous embedding", check=_strings),
    "paths": Key((dict,), {}, "data set → processed folder (relative to this file); default: "
                 "the output folder of sd.toml", check=_string_table),
    "split": Key((str,), "train", "split to train on", choices=("train", "val", "test")),
    "image_size": Key((int,), 64, "images are resized to this size for training", check=_positive),
    "batch_size": Key((int,), 16, "images per batch (per process)", check=_positive),
    "cache_mb": Key((int, float), 2048, "decode all images once when they fit in this many MB",
                    check=_non_negative),
    "balanced": Key((str,), "", "balance sampling over (data set × class) of this condition "
                    "(\"\" = off)"),
    "max_sampling_weight": Key((int, float), 10.0, "cap of a balanced group's weight", check=_positive),
}

#: [model] keys of every kind; the kind's own options (`sd diffusion models`) go in [model] too.
MODEL = {
    "kind": Key((str,), "unet", "the denoising network (see `sd diffusion models`); its options are set "
                "in this section too"),
    "text_encoder": Key((str,), "", "local folder of a transformers text encoder (and tokenizer) "
                        "for caption conditioning (\"\" = no captions)"),
    "cond_dropout": Key((int, float), 0.1, "classifier-free guidance dropout probability",
                        check=_fraction),
}

TRAINING = {
    "steps": Key((int,), 0, "optimizer steps (0 = use epochs)", check=_non_negative),
    "epochs": Key((int,), 10, "passes over the data when steps = 0", check=_positive),
    "lr": Key((int, float), 2e-4, "peak learning rate (AdamW)", check=_positive),
    "warmup_steps": Key((int,), 100, "linear warm-up steps before cosine decay", check=_non_negative),
    "weight_decay": Key((int, float), 0.01, "AdamW weight decay", check=_non_negative),
    "grad_accum": Key((int,), 1, "batches per optimizer step", check=_positive),
    "max_grad_norm": Key((int, float), 1.0, "gradient clipping (0 = off)", check=_non_negative),
    "mixed_precision": Key((str,), "no", "mixed precision", choices=("no", "fp16", "bf16")),
    "beta_schedule": Key((str,), "squaredcos_cap_v2", "noise schedule",
                         choices=("linear", "scaled_linear", "squaredcos_cap_v2")),
    "num_train_timesteps": Key((int,), 1000, "diffusion steps of the noise schedule", check=_positive),
    "prediction_type": Key((str,), "epsilon", "what the UNet predicts",
                           choices=("epsilon", "v_prediction")),
    "snr_gamma": Key((int, float), 5.0, "min-SNR-γ loss weighting (0 = off)", check=_non_negative),
    "ema_decay": Key((int, float), 0.999, "EMA decay of the weights (0 = no EMA)", check=_fraction),
    "seed": Key((int,), 0, "seed of initialisation, data order and noise"),
    "checkpoint_steps": Key((int,), 500, "save a resumable checkpoint every N steps (0 = only at the end)",
                            check=_non_negative),
    "keep_checkpoints": Key((int,), 2, "checkpoints kept (oldest removed first)", check=_positive),
    "sample_steps": Key((int,), 500, "write a sample grid every N steps (0 = only at the end)",
                        check=_non_negative),
    "sample_solver_steps": Key((int,), 25, "solver steps of the sample grids", check=_positive),
    "samples_per_condition": Key((int,), 4, "images per row of a sample grid", check=_positive),
    "guidance": Key((int, float), 2.0, "guidance scale of the sample grids", check=_non_negative),
    "output_dir": Key((str,), "runs/diffusion", "run folder (relative to this file; --out overrides)"),
    "log_with": LOG_WITH,
    "quality_steps": Key((int,), 0, "every N steps, KID and FID of generated images against a fixed batch of "
                         "real validation images in a real classifier's embedding (0 = off); checkpoints are "
                         "then kept by KID", check=_non_negative),
    "quality_images": Key((int,), 64, "real validation images (and generated ones) of each quality check",
                          check=_positive),
    "quality_classifier": Key((str,), "", "sd train run whose embedding the quality checks use (\"\" = "
                              "train a small one on the training split first)"),
    "keep_best": Key((int,), 3, "checkpoints kept by KID when quality_steps is on", check=_positive),
}

SCHEMA = {"data": DATA, "model": MODEL, "training": TRAINING}
REQUIRED = {"data": ("datasets", "conditions")}


def _kind_of(path: Any) -> Any:
    """``[model] kind`` as the file gives it (checked with the rest of the file later)."""
    if isinstance(path, Mapping):
        raw = path
    else:
        if not Path(path).is_file():
            return MODEL["kind"].default  # load_experiment says the file does not exist
        raw = read_toml(Path(path))
    model = raw.get("model") if isinstance(raw, Mapping) else None
    return model.get("kind", MODEL["kind"].default) if isinstance(model, Mapping) else MODEL["kind"].default


def schema_for(kind_spec: Any) -> dict[str, dict[str, Key]]:
    """The experiment schema with [model] holding the common keys and the kind's options."""
    options = {k: v for k, v in option_keys(kind_spec.options).items() if k not in MODEL}
    return {**SCHEMA, "model": {**MODEL, **options}}


def load_diffusion_experiment(path: str | Path | Mapping[str, Any], registry: Any = None) -> Experiment:
    """Read and validate a diffusion experiment file, the model kind and its options included."""
    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    kind = _kind_of(path)
    kinds = registry.diffusion_models
    spec = kinds.get(kind) if isinstance(kind, str) else kinds.get(MODEL["kind"].default)
    if spec is None:
        src = path if not isinstance(path, Mapping) else "python-experiment.toml"
        raise ConfigError(f"{src}: [model] kind = {kind!r} is not installed; allowed: "
                          + (", ".join(kinds) or "none") + did_you_mean(kind, list(kinds)))
    exp = load_experiment(path, schema_for(spec), REQUIRED)
    check_tracker(exp["training"]["log_with"], f"{exp.source}: [training]")
    d = exp["data"]
    if not d["conditions"]:
        raise exp.error("data", "conditions", "must name at least one task to condition on")
    problem = spec.check(d["image_size"], kind_options(exp, spec)) if spec.check else None
    if problem:
        raise ConfigError(f"{exp.source}: {problem}")
    return exp


def kind_options(exp: Experiment, spec: Any, resolve: bool = True) -> dict[str, Any]:
    """The kind's options of an experiment; path options relative to the file made absolute."""
    m = exp["model"]
    out = {k: m.get(k, o.default) for k, o in spec.options.items() if k not in MODEL}
    if resolve:
        out.update({k: str(exp.path(out[k])) for k, o in spec.options.items()
                    if getattr(o, "path", False) and out.get(k)})
    return out


def same_experiment(saved: Path, exp: Experiment) -> bool:
    """Whether a run's config.toml holds the experiment ``exp`` (a run of an sd before model kinds
    has no [model] kind: it was a unet)."""
    import tomllib

    text = saved.read_text(encoding="utf-8")
    if text == exp.dumps():
        return True
    try:
        old = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    if isinstance(old.get("model"), dict):
        old["model"].setdefault("kind", MODEL["kind"].default)
    return old == tomllib.loads(exp.dumps())


def starter(registry: Any = None) -> str:
    """``sd init --experiment diffusion``: a commented experiment file with every key."""
    ds = next(iter(registry.datasets), "parkinsons") if registry is not None else "parkinsons"
    task = getattr(registry.datasets.get(ds), "main_task", "") if registry is not None else ""
    from sd_core.diffusion.kinds import builtin_kinds

    unet = next(k for k in builtin_kinds() if k.name == "unet")
    return starter_experiment("sd diffusion train experiment file: sd diffusion train diffusion.toml",
                              schema_for(unet), {"data": {"datasets": [ds], "conditions": [task or "gender"]}})


__all__ = ["REQUIRED", "SCHEMA", "ConfigError", "kind_options", "load_diffusion_experiment", "schema_for",
           "starter"]
