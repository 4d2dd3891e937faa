"""The experiment file of ``sd diffusion train`` (sections ``[data]``, ``[model]``, ``[training]``).

Light: no torch import, so that the schema can be documented and validated cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sd_core.config import Key, _fraction, _non_negative, _positive, _string_table, _strings
from sd_core.errors import ConfigError
from sd_core.experiment import Experiment, load_experiment, starter_experiment
from sd_core.tracking import LOG_WITH, check_tracker


def _channels(v: list) -> str | None:
    if not v or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
        return "must be a non-empty list of positive integers"
    return None


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

MODEL = {
    "block_out_channels": Key((list,), [32, 64, 64], "channels per UNet resolution level",
                              check=_channels),
    "layers_per_block": Key((int,), 1, "ResNet layers per UNet block", check=_positive),
    "attention": Key((bool,), True, "self-attention blocks at the lowest resolution"),
    "norm_num_groups": Key((int,), 8, "groups of the group norms (must divide every channel count)",
                           check=_positive),
    "patch_size": Key((int,), 1, "the UNet sees p×p pixel patches as p² channels at 1/p of the image "
                      "size (2: a 64×64 model costs about a 32×32 one)", choices=(1, 2, 4)),
    "pretrained": Key((str,), "", "local folder of a UNet2DModel saved with save_pretrained to "
                      "start from (\"\" = train from scratch)"),
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


def load_diffusion_experiment(path: str | Path) -> Experiment:
    """Read and validate a diffusion experiment file."""
    exp = load_experiment(path, SCHEMA, REQUIRED)
    check_tracker(exp["training"]["log_with"], f"{exp.source}: [training]")
    d, m = exp["data"], exp["model"]
    if not d["conditions"]:
        raise exp.error("data", "conditions", "must name at least one task to condition on")
    bad = [c for c in m["block_out_channels"] if c % m["norm_num_groups"]]
    if bad and not m["pretrained"]:
        raise exp.error("model", "norm_num_groups",
                        f"= {m['norm_num_groups']} does not divide block_out_channels {bad}")
    size = d["image_size"]
    factor = 2 ** (len(m["block_out_channels"]) - 1) * m["patch_size"]
    if size % factor and not m["pretrained"]:
        raise exp.error("data", "image_size", f"= {size} must be a multiple of {factor} "
                        f"(patches of {m['patch_size']} pixels, then the UNet halves it "
                        f"{len(m['block_out_channels']) - 1} times)")
    return exp


def starter(registry: Any = None) -> str:
    """``sd init --experiment diffusion``: a commented experiment file with every key."""
    ds = next(iter(registry.datasets), "parkinsons") if registry is not None else "parkinsons"
    task = getattr(registry.datasets.get(ds), "main_task", "") if registry is not None else ""
    return starter_experiment("sd diffusion train experiment file: sd diffusion train diffusion.toml",
                              SCHEMA, {"data": {"datasets": [ds], "conditions": [task or "gender"]}})


__all__ = ["REQUIRED", "SCHEMA", "ConfigError", "load_diffusion_experiment", "starter"]
