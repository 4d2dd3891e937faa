"""The diffusion stage of ``sd demo``: a tiny model, a small balanced set, real vs generated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

#: What benchmarks/bench_generation.py found for a CPU (issue 14), at half its training steps so
#: that the demo stays within a few minutes: 64×64 images in 2×2 patches, three UNet levels, and
#: 25 steps of the stochastic DPM-Solver++.
DEMO_STEPS = 400
DEMO_SIZE = 64
DEMO_PER_CLASS = 20


def demo_experiment(processed: Path, dataset: str, conditions: list[str], run: Path, steps: int,
                    seed: int) -> str:
    """The experiment file of the demo (a tiny UNet at 32×32, trained briefly)."""
    from sd_core.config.toml import toml_value

    return f"""# written by sd demo: a small conditional diffusion model, trained briefly on a CPU
[data]
datasets = [{toml_value(dataset)}]
conditions = {toml_value(list(conditions))}
paths = {{ {dataset} = {toml_value(str(processed))} }}
image_size = {DEMO_SIZE}
batch_size = 16

[model]
block_out_channels = [32, 64, 128]
layers_per_block = 1
attention = false
norm_num_groups = 8
patch_size = 2
cond_dropout = 0.1

[training]
steps = {steps}
lr = 0.001
warmup_steps = 50
ema_decay = 0.995
snr_gamma = 5.0
seed = {seed}
checkpoint_steps = 0
sample_steps = 0
sample_solver_steps = 25
output_dir = {toml_value(str(run))}
"""


def demo_diffusion(processed: Path, dataset: str, conditions: list[str], work: Path, seed: int = 0,
                   console: Any = None, steps: int = DEMO_STEPS, per_condition: int = DEMO_PER_CLASS,
                   threads: int | None = 1) -> dict[str, Any]:
    """Train a tiny model on ``processed`` (one data set), generate a balanced set, and save
    ``work/report/<dataset>-real-vs-generated.png``.

    threads: torch intra-op threads while the demo runs (None = leave as is). A model this
    small gains little from threads, and on a busy machine waiting OpenMP threads make it
    many times slower, so the demo uses one.
    """
    import torch

    from sd_core.config.project import load_config
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.train import train_diffusion

    work = Path(work)
    cfg = work / "diffusion" / f"{dataset}.toml"
    run = work / "diffusion" / f"{dataset}-run"
    gen = work / "generated" / dataset
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(demo_experiment(Path(processed).resolve(), dataset, conditions, run, steps, seed))
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        exp = load_diffusion_experiment(cfg)
        from sd_core.diffusion.train import latest_checkpoint

        saved = run / "config.toml"
        if saved.is_file() and saved.read_text(encoding="utf-8") != exp.dumps():
            import shutil  # a run of an earlier demo (the demo owns its workdir): start it again

            shutil.rmtree(run)
        res = train_diffusion(exp, load_config(None), resume=latest_checkpoint(run) is not None,
                              console=console)
        # the stochastic DPM-Solver++ (sd generate's default): 25 steps do what 250 ancestral
        # DDPM steps do, where the deterministic solver passes the model's errors on
        out = generate_dataset(run, gen, per_condition, balanced=True, steps=25, scheduler="dpm",
                               guidance=2.0, seed=seed, overwrite=True, console=console)
    finally:
        torch.set_num_threads(before)
    grid = real_vs_generated(Path(processed), gen, run, work / "report" / f"{dataset}-real-vs-generated.png")
    return {"steps": res["steps"], "final_loss": res["final_loss"], "train_seconds": res["seconds"],
            "seconds": time.perf_counter() - t0, "grid": grid, "generated": gen, "run": run,
            "images": out["images"], "per_subject": out["per_subject"]}


def real_vs_generated(processed: Path, generated: Path, run: Path, target: Path, per_row: int = 6) -> Path:
    """Per class combination: a row of real images, then a row of generated ones."""
    import numpy as np

    from sd_core.data.images import load_image
    from sd_core.data.labels import LabelSpec
    from sd_core.data.sources import Source, read_metadata
    from sd_core.diffusion.figures import labelled_grid
    from sd_core.diffusion.plans import balanced_combos

    spec = LabelSpec.load(run / "labels.json")
    real = read_metadata(Source(processed), spec.split)
    fake = read_metadata(Source(generated), "train")
    rows: list[tuple[str, list[np.ndarray]]] = []
    for combo in balanced_combos(spec):
        label = " ".join(f"{k}={v}" for k, v in combo.items())

        def pick(rs, combo=combo):
            return [r for r in rs if all(spec.task(k).raw_value(r) == v for k, v in combo.items())]

        r_rows = pick(real)
        step = max(1, len(r_rows) // per_row)
        rows.append((f"real {label}", [load_image(r, spec.image_size) for r in r_rows[::step][:per_row]]))
        rows.append((f"generated {label}", [load_image(r, spec.image_size) for r in pick(fake)[:per_row]]))
    return labelled_grid(rows, target, tile=64, title=f"{', '.join(spec.datasets)}: real vs generated "
                         f"({spec.image_size}x{spec.image_size})")
