"""``sd diffusion train``: a conditional denoiser of any model kind trained under accelerate.

Run folder::

    <run>/config.toml                 the resolved experiment (checked on --resume)
    <run>/checkpoints/step-000500/    model, optimizer, LR schedule, EMA and random states in the
                                      classifier's checkpoint format (safetensors + JSON, no pickle;
                                      sd_core.training.checkpoint) + trainer.json (step, losses)
    <run>/state.json                  latest checkpoint and the checkpoints sd wrote (only those
                                      are ever pruned)
    <run>/samples/step-000500.png     sample grids: one row per class combination
    <run>/unet/ (or the kind's folder) final network (EMA weights), save_pretrained, safetensors
    <run>/model.json                  model kind, its options and network folder
    <run>/model_index.json            the run as a diffusers pipeline (sd_core.diffusion.pipeline)
    <run>/conditioning/               conditioning module (safetensors + config.json)
    <run>/scheduler/                  noise scheduler config (DDPM; sampling builds others from it)
    <run>/labels.json                 conditions, classes, columns, age mean/std, label combos
    <run>/history.json  loss.png      loss per step and its curve

Reproducibility and resume: the data order of epoch e depends only on (seed, e); the noise,
timesteps and guidance dropout of micro-batch m only on (seed, m, process). A resumed run
restores weights, optimizer, LR schedule and EMA from the latest checkpoint and continues with
micro-batch ``step × grad_accum``, so it ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from sd_core.config.experiment import Experiment
from sd_core.data.sampling import epoch_batches, epoch_order
from sd_core.diffusion.loss import diffusion_loss, drop_conditions
from sd_core.diffusion.model import COND_DIR
from sd_core.diffusion.pipeline import write_model_index
from sd_core.diffusion.trainrun import CHECKPOINTS as CHECKPOINTS
from sd_core.diffusion.trainrun import RUN_FILES as RUN_FILES
from sd_core.diffusion.trainrun import TRAINER_STATE, TrainRun, checkpoint_name, set_up, trainable
from sd_core.diffusion.trainrun import latest_checkpoint as latest_checkpoint
from sd_core.diffusion.trainrun import run_folder as run_folder
from sd_core.preprocess.layout import write_json
from sd_core.runs import tracking
from sd_core.training import checkpoint as ckpt


class StopTraining(Exception):
    """Raised by an ``on_step`` callback to stop (tests use it to simulate an interruption)."""


def train_diffusion(exp: Experiment, project: Any, registry: Any = None, out: str | Path | None = None,
                    resume: bool = False, console: Any = None,
                    on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the run of an experiment; returns a summary. The main process holds the
    run folder's lock meanwhile (sd_core.runs.lock: a second run into it refuses at once)."""
    from sd_core.runs.lock import main_process_lock

    with main_process_lock(run_folder(exp, out)):
        r = set_up(exp, project, registry, out, resume, console)
        seconds = _train(r, console, on_step)
        grid = _finish(r)
        return _summary(r, seconds, grid)


# -- the training loop ---------------------------------------------------------------------------

def _train(r: TrainRun, console: Any, on_step: Callable[[int, float], None] | None) -> float:
    """The optimizer steps from ``r.start`` to ``r.total`` with their periodic checkpoints, quality
    checks and sample grids; returns the seconds they took."""
    t0 = time.perf_counter()
    r.model.train()
    progress = _progress(console if r.acc.is_main_process else None)
    with progress:
        task_id = progress.add_task("training", total=r.total, completed=r.start)
        for step in range(r.start, r.total):
            step_loss = _optimizer_step(r, step)
            done = step + 1
            r.history.append({"step": done, "loss": step_loss, "lr": r.lr_sched.get_last_lr()[0]})
            tracking.log(r.acc, r.tr["log_with"], {"train/loss": step_loss, "train/lr": r.history[-1]["lr"]}, done)
            progress.update(task_id, advance=1, description=f"training  loss {step_loss:.4f}")
            _periodic(r, done)
            if on_step is not None:
                on_step(done, step_loss)
    return time.perf_counter() - t0


def _optimizer_step(r: TrainRun, step: int) -> float:
    """One optimizer step over ``grad_accum`` micro-batches (and the EMA's); returns its mean loss
    over the processes."""
    acc, tr, ga = r.acc, r.tr, r.ga
    losses = [_micro_batch(r, step * ga + a, sync=a == ga - 1) for a in range(ga)]
    if tr["max_grad_norm"] > 0:
        acc.clip_grad_norm_(r.model.parameters(), tr["max_grad_norm"])
    r.opt.step()
    r.lr_sched.step()
    r.opt.zero_grad(set_to_none=True)
    if r.ema is not None:
        r.ema.step(trainable(acc.unwrap_model(r.model)))
    return float(acc.reduce(torch.stack(losses).mean(), reduction="mean"))


def _micro_batch(r: TrainRun, micro: int, sync: bool) -> torch.Tensor:
    """Forward and backward pass of micro-batch ``micro``: its noise, timesteps and guidance dropout
    depend only on (seed, micro, process); gradients are synchronised on the last of a step."""
    acc, m, tr, rank = r.acc, r.m, r.tr, r.acc.process_index
    batch = r.images.__getitems__(_batch_indices(r, micro))
    gen = torch.Generator().manual_seed((r.seed * 1_000_003 + micro) * 131 + rank)
    labels, text_rows = drop_conditions(batch["targets"], m["cond_dropout"], gen,
                                        r.text_table[r.text_index[batch["index"]]]
                                        if r.text_table is not None else None)
    labels = {k: v.to(acc.device) for k, v in labels.items()}
    text = text_rows.to(acc.device) if text_rows is not None else None
    x0 = acc.unwrap_model(r.model).network.to_latent(batch["image"].to(acc.device))
    ctx = acc.no_sync(r.model) if not sync else nullcontext()
    with ctx:
        with acc.autocast():
            loss = diffusion_loss(r.model, r.noise_scheduler, x0, labels, text, gen,
                                  tr["prediction_type"], tr["snr_gamma"])
        acc.backward(loss / r.ga)
    return loss.detach()


def _batch_indices(r: TrainRun, micro: int) -> list[int]:
    """The rows of micro-batch ``micro`` on this process: epoch e's order depends only on (seed, e)."""
    epoch, i = divmod(micro, r.per_epoch)
    if epoch not in r.orders:
        r.orders.clear()
        order = epoch_order(len(r.rows), epoch, r.seed, r.weights)
        r.orders[epoch] = epoch_batches(order, r.d["batch_size"], r.acc.num_processes, r.acc.process_index)
    return r.orders[epoch][i]


def _periodic(r: TrainRun, done: int) -> None:
    """After step ``done`` (before the last): a quality check or a checkpoint, and a sample grid."""
    tr = r.tr
    if tr["quality_steps"] and done % tr["quality_steps"] == 0 and done < r.total:
        _check_quality(r, done)
    elif tr["checkpoint_steps"] and done % tr["checkpoint_steps"] == 0 and done < r.total:
        _save_checkpoint(r, done)
    if tr["sample_steps"] and done % tr["sample_steps"] == 0 and done < r.total:
        _write_grid(r, done)


# -- checkpoints, quality checks and sample grids --------------------------------------------

def _save_checkpoint(r: TrainRun, step: int) -> None:
    """Checkpoint ``step`` (all processes' random states; written by the main process), then prune."""
    acc = r.acc
    acc.wait_for_everyone()
    rngs = ckpt.gather_rng_states(acc)
    if acc.is_main_process:
        name = checkpoint_name(step)
        folder = ckpt.save_checkpoint(r.run, r.run_state, name, acc.unwrap_model(r.model), r.opt, r.lr_sched,
                                      {"step": step}, rngs, r.extras)
        write_json(folder / TRAINER_STATE, {"step": step, "history": r.history})
        r.run_state.latest = name
        r.run_state.write(r.run)
        ckpt.prune(r.run, r.run_state, keep_latest=int(r.tr["keep_checkpoints"]))
        r.run_state.write(r.run)
    acc.wait_for_everyone()


@contextmanager
def _ema_weights(r: TrainRun):
    """The unwrapped model with its EMA weights, in evaluation mode, for the duration."""
    net = r.acc.unwrap_model(r.model)
    if r.ema is not None:
        r.ema.store(trainable(net))
        r.ema.copy_to(trainable(net))
    net.eval()
    try:
        yield net
    finally:
        net.train()
        if r.ema is not None:
            r.ema.restore(trainable(net))


def _check_quality(r: TrainRun, step: int) -> None:
    """KID/FID of the EMA model (main process), in the history; the checkpoint is ranked by KID."""
    tr = r.tr
    if r.probe is not None:
        with _ema_weights(r) as net:
            q = r.probe.measure(net, r.noise_scheduler.config, tr["sample_solver_steps"], tr["guidance"],
                                r.acc.device)
        r.history[-1].update(q)
        tracking.log(r.acc, tr["log_with"], {f"quality/{k}": v for k, v in q.items()}, step)
        ckpt.rank_best(r.run_state, q["kid"], checkpoint_name(step), False, int(tr["keep_best"]))
    _save_checkpoint(r, step)


def _write_grid(r: TrainRun, step: int) -> Path | None:
    """The sample grid of the EMA model at ``step`` (main process)."""
    if not r.acc.is_main_process:
        return None
    from sd_core.diffusion.figures import sample_grid

    tr = r.tr
    with _ema_weights(r) as net:
        return sample_grid(net, r.spec, r.noise_scheduler.config, r.run / "samples" / f"{checkpoint_name(step)}.png",
                           steps=tr["sample_solver_steps"], per_row=tr["samples_per_condition"],
                           guidance=tr["guidance"], seed=r.seed, registry=r.registry, text=r.text_encoder,
                           device=r.acc.device, title=f"step {step}")


# -- the end of a run --------------------------------------------------------------------------

def _finish(r: TrainRun) -> Path | None:
    """The last checkpoint (after a last quality check), the last sample grid and the final network;
    returns the grid."""
    if r.tr["quality_steps"]:
        _check_quality(r, r.total)
    else:
        _save_checkpoint(r, r.total)
    tracking.end(r.acc, r.tr["log_with"])
    grid = _write_grid(r, r.total)
    if r.acc.is_main_process:
        _save_final(r)
        ckpt.start_log(r.run).remove()  # state.json says what the run is now
    r.acc.wait_for_everyone()
    return grid


def _save_final(r: TrainRun) -> None:
    """The network with its EMA weights, the conditioning, model_index.json, history and loss curve."""
    net = r.acc.unwrap_model(r.model)
    if r.ema is not None:
        r.ema.copy_to(trainable(net))
    _replace_dir(r.run / r.kind.folder, lambda p: net.network.save(p))
    _replace_dir(r.run / COND_DIR, lambda p: net.cond.save(p))
    write_model_index(r.run, r.kind.folder)
    write_json(r.run / "history.json", r.history)
    from sd_core.diffusion.figures import loss_curve

    loss_curve(r.history, r.run / "loss.png")


def _summary(r: TrainRun, seconds: float, grid: Path | None) -> dict[str, Any]:
    last = r.history[-10:]
    best = r.run_state.best[0] if r.run_state.best else None
    return {"run": r.run, "steps": r.total, "start": r.start, "seconds": seconds,
            "best": {"checkpoint": best[1], "kid": best[0]} if best else None,
            "final_loss": sum(h["loss"] for h in last) / max(1, len(last)), "grid": grid,
            "images": len(r.rows), "conditions": [t.name for t in r.tasks]}


def _replace_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Write a folder next to ``target`` and swap it in (a crash leaves the old or the new one)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from sd_core.runs.progress import make_progress

    return make_progress(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                         TimeRemainingColumn(), label="diffusion", transient=False)
