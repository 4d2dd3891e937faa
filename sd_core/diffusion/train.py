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

import math
from contextlib import contextmanager, nullcontext
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sd_core.data.sampling import epoch_batches, epoch_order
from sd_core.diffusion.conditioning import Conditioning
from sd_core.diffusion.data import caption_table, load_training_data
from sd_core.data.labels import LabelSpec, label_combos
from sd_core.diffusion.loss import diffusion_loss, drop_conditions
from sd_core.diffusion.config import kind_options, same_experiment
from sd_core.diffusion.model import COND_DIR, LABELS, MODEL_JSON, SCHEDULER_DIR, UNET_DIR, Denoiser, TextEncoder
from sd_core.diffusion.pipeline import MODEL_INDEX, write_model_index
from sd_core.errors import ConfigError, SdError
from sd_core.config.experiment import Experiment
from sd_core.runs.files import atomic_write_text
from sd_core.preprocess.layout import write_json
from sd_core.plugins.specs import CLASSIFICATION, REGRESSION
from sd_core.runs import tracking
from sd_core.training import checkpoint as ckpt

CHECKPOINTS = ckpt.CHECKPOINTS
TRAINER_STATE = "trainer.json"
#: What a diffusion run writes at its top level; a new run refuses a folder holding any of them.
RUN_FILES = ("config.toml", "state.json", "history.json", "loss.png", UNET_DIR, COND_DIR,
             SCHEDULER_DIR, LABELS, MODEL_JSON, MODEL_INDEX, "vae", "text_encoder", "tokenizer")


class StopTraining(Exception):
    """Raised by an ``on_step`` callback to stop (tests use it to simulate an interruption)."""


checkpoint_name = ckpt.checkpoint_name


def latest_checkpoint(run: Path) -> Path | None:
    """The newest complete checkpoint sd wrote in ``run`` (from ``state.json``)."""
    state = ckpt.RunState.read(run)
    if state.latest:
        return run / CHECKPOINTS / state.latest
    folder = run / CHECKPOINTS
    if not (run / "state.json").exists() and folder.is_dir():  # a run of an older sd
        found = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-")
                       and (p / TRAINER_STATE).is_file())
        return found[-1] if found else None
    return None


def run_folder(exp: Experiment, out: str | Path | None) -> Path:
    return Path(out).resolve() if out else exp.path(exp["training"]["output_dir"])


# -- training --------------------------------------------------------------------------------

def _check_precision(mp: str, src: str) -> None:
    if mp == "fp16" and not torch.cuda.is_available():
        raise ConfigError(f"{src}: [training] mixed_precision = \"fp16\" needs a CUDA GPU and none is "
                          "available; use \"no\" (or \"bf16\" where the CPU supports it)")


def trainable(net) -> list:
    """What is optimised and averaged (frozen parts such as a latent kind's VAE are not)."""
    return [p for p in net.parameters() if p.requires_grad]


def _steps_per_epoch(n_rows: int, batch_size: int, world: int) -> int:
    nb = max(1, math.ceil(n_rows / batch_size))
    nb = max(nb, world)
    return (nb - nb % world) // world


def train_diffusion(exp: Experiment, project: Any, registry: Any = None, out: str | Path | None = None,
                    resume: bool = False, console: Any = None,
                    on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the run of an experiment; returns a summary."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    d, m, tr = exp["data"], exp["model"], exp["training"]
    src = str(exp.source)
    _check_precision(tr["mixed_precision"], src)
    run = run_folder(exp, out)
    config_text = exp.dumps()
    latest = latest_checkpoint(run)
    if latest is not None and not resume:
        raise SdError(f"run folder {run} has checkpoints; pass --resume to continue it, or choose "
                      "another folder with --out")
    kind = registry.diffusion_model(m["kind"])
    if latest is None:
        ckpt.check_fresh_run(run, tuple(dict.fromkeys((*RUN_FILES, kind.folder))))
    saved = run / "config.toml"
    if resume and latest is not None and saved.is_file() and not same_experiment(saved, exp):
        raise SdError(f"{run} was started with a different experiment (see {saved}); "
                      "resume with the same file and options, or train into another folder with --out")

    cuda = torch.cuda.is_available()
    acc = Accelerator(mixed_precision=tr["mixed_precision"], cpu=not cuda,
                      **tracking.accelerator_kwargs(tr["log_with"], run))
    say = console.print if (console is not None and acc.is_main_process) else (lambda *a, **k: None)

    rows, tasks, images, weights = load_training_data(exp, project, registry)
    text_encoder = None
    text_table = text_index = None
    if m["text_encoder"]:
        text_encoder = TextEncoder(exp.path(m["text_encoder"]), where=f"{src}: [model] text_encoder")
        text_table, text_index = caption_table(rows, registry, text_encoder)

    seed = int(tr["seed"])
    torch.manual_seed(seed)
    options = kind_options(exp, kind)
    try:
        network = kind.build(d["image_size"], **options)
    except ConfigError as exc:
        raise ConfigError(f"{src}: {exc}") from None
    if getattr(network, "uses_context", False):  # captions through the network's own text encoder
        if text_encoder is not None:
            raise ConfigError(f"{src}: [model] text_encoder: kind {kind.name!r} encodes captions with its own "
                              "text encoder; set text_encoder = \"\"")
        text_encoder = network
        text_table, text_index = caption_table(rows, registry, network)
    cond = Conditioning({t.name: t.num_classes for t in tasks if t.kind == CLASSIFICATION},
                        [t.name for t in tasks if t.kind == REGRESSION], network.cond_dim,
                        text_encoder.dim if isinstance(text_encoder, TextEncoder) else 0,
                        classes={t.name: list(t.classes) for t in tasks if t.kind == CLASSIFICATION},
                        stats={t.name: [t.mean, t.std] for t in tasks if t.kind == REGRESSION})
    if hasattr(network, "init_conditioning"):
        network.init_conditioning(cond)
    model = Denoiser(network, cond)
    noise_scheduler = DDPMScheduler(num_train_timesteps=tr["num_train_timesteps"],
                                    beta_schedule=tr["beta_schedule"], prediction_type=tr["prediction_type"])
    spec = LabelSpec(list(d["datasets"]), tasks, d["image_size"], images.stored_size, d["split"],
                     str(text_encoder.path) if isinstance(text_encoder, TextEncoder) else "", label_combos(rows, tasks))

    world, rank, ga = acc.num_processes, acc.process_index, int(tr["grad_accum"])
    per_epoch = _steps_per_epoch(len(rows), d["batch_size"], world)  # micro-batches per process
    total = int(tr["steps"]) or max(1, math.ceil(tr["epochs"] * per_epoch / ga))

    opt = torch.optim.AdamW(trainable(model), lr=tr["lr"], weight_decay=tr["weight_decay"])
    lr_sched = get_cosine_schedule_with_warmup(opt, min(tr["warmup_steps"], total), total)
    ema = EMAModel(trainable(model), decay=tr["ema_decay"]) if tr["ema_decay"] > 0 else None
    model, opt = acc.prepare(model, opt)
    if ema is not None:
        ema.to(acc.device)
    extras = {"ema": ema} if ema is not None else {}

    start, history = 0, []
    run_state = ckpt.RunState.read(run) if latest is not None else ckpt.RunState()
    if resume and latest is not None:
        ckpt.load_checkpoint(latest, acc.unwrap_model(model), opt, lr_sched, rank, extras)
        trainer = ckpt.read_json(latest / TRAINER_STATE)
        try:
            start, history = int(trainer["step"]), list(trainer["history"])
        except (TypeError, KeyError, ValueError):
            raise SdError(f"{latest / TRAINER_STATE}: not a trainer state written by sd") from None
        say(f"resuming {run} from {latest.name} (step {start} of {total})")
    elif resume:
        say(f"no checkpoint in {run}; starting from the beginning")
    if acc.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.toml", config_text)
        spec.save(run / LABELS)
        write_json(run / MODEL_JSON, {"kind": kind.name, "folder": kind.folder, "options": options})
        noise_scheduler.save_pretrained(str(run / SCHEDULER_DIR))
    probe = None
    if tr["quality_steps"] and acc.is_main_process:
        from sd_core.diffusion.quality import QualityProbe

        say("quality checks: preparing the real validation batch and its classifier")
        probe = QualityProbe(exp, project, registry, run, spec, text_encoder)
    acc.wait_for_everyone()
    say(f"{len(rows)} {d['split']} images of {', '.join(d['datasets'])} at {d['image_size']}×{d['image_size']}; "
        f"conditions {', '.join(t.name for t in tasks)}; {sum(p.numel() for p in model.parameters()):,} "
        f"parameters; {total} steps of {d['batch_size']}×{ga}×{world} images on {acc.device}")

    orders: dict[int, list[list[int]]] = {}

    def batch_indices(micro: int) -> list[int]:
        epoch, i = divmod(micro, per_epoch)
        if epoch not in orders:
            orders.clear()
            order = epoch_order(len(rows), epoch, seed, weights)
            orders[epoch] = epoch_batches(order, d["batch_size"], world, rank)
        return orders[epoch][i]

    def save_checkpoint(step: int) -> None:
        acc.wait_for_everyone()
        rngs = ckpt.gather_rng_states(acc)
        if acc.is_main_process:
            name = checkpoint_name(step)
            folder = ckpt.save_checkpoint(run, run_state, name, acc.unwrap_model(model), opt, lr_sched,
                                          {"step": step}, rngs, extras)
            write_json(folder / TRAINER_STATE, {"step": step, "history": history})
            run_state.latest = name
            run_state.write(run)
            ckpt.prune(run, run_state, keep_latest=int(tr["keep_checkpoints"]))
            run_state.write(run)
        acc.wait_for_everyone()

    @contextmanager
    def ema_weights():
        """The unwrapped model with its EMA weights, in evaluation mode, for the duration."""
        net = acc.unwrap_model(model)
        if ema is not None:
            ema.store(trainable(net))
            ema.copy_to(trainable(net))
        net.eval()
        try:
            yield net
        finally:
            net.train()
            if ema is not None:
                ema.restore(trainable(net))

    def check_quality(step: int) -> None:
        """KID/FID of the EMA model (main process), in the history; the checkpoint is ranked by KID."""
        if probe is not None:
            with ema_weights() as net:
                q = probe.measure(net, noise_scheduler.config, tr["sample_solver_steps"], tr["guidance"], acc.device)
            history[-1].update(q)
            tracking.log(acc, tr["log_with"], {f"quality/{k}": v for k, v in q.items()}, step)
            ckpt.rank_best(run_state, q["kid"], checkpoint_name(step), False, int(tr["keep_best"]))
        save_checkpoint(step)

    def write_grid(step: int) -> Path | None:
        if not acc.is_main_process:
            return None
        from sd_core.diffusion.figures import sample_grid

        with ema_weights() as net:
            return sample_grid(net, spec, noise_scheduler.config, run / "samples" / f"{checkpoint_name(step)}.png",
                               steps=tr["sample_solver_steps"], per_row=tr["samples_per_condition"],
                               guidance=tr["guidance"], seed=seed, registry=registry, text=text_encoder,
                               device=acc.device, title=f"step {step}")

    t0 = time.perf_counter()
    model.train()
    progress = _progress(console if acc.is_main_process else None)
    with progress:
        task_id = progress.add_task("training", total=total, completed=start)
        for step in range(start, total):
            losses = []
            for a in range(ga):
                micro = step * ga + a
                idx = batch_indices(micro)
                batch = images.__getitems__(idx)
                gen = torch.Generator().manual_seed((seed * 1_000_003 + micro) * 131 + rank)
                labels, text_rows = drop_conditions(batch["targets"], m["cond_dropout"], gen,
                                                    text_table[text_index[batch["index"]]]
                                                    if text_table is not None else None)
                labels = {k: v.to(acc.device) for k, v in labels.items()}
                text = text_rows.to(acc.device) if text_rows is not None else None
                x0 = acc.unwrap_model(model).network.to_latent(batch["image"].to(acc.device))
                ctx = acc.no_sync(model) if a < ga - 1 else nullcontext()
                with ctx:
                    with acc.autocast():
                        loss = diffusion_loss(model, noise_scheduler, x0, labels, text, gen,
                                              tr["prediction_type"], tr["snr_gamma"])
                    acc.backward(loss / ga)
                losses.append(loss.detach())
            if tr["max_grad_norm"] > 0:
                acc.clip_grad_norm_(model.parameters(), tr["max_grad_norm"])
            opt.step()
            lr_sched.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(trainable(acc.unwrap_model(model)))
            step_loss = float(acc.reduce(torch.stack(losses).mean(), reduction="mean"))
            done = step + 1
            history.append({"step": done, "loss": step_loss, "lr": lr_sched.get_last_lr()[0]})
            tracking.log(acc, tr["log_with"], {"train/loss": step_loss, "train/lr": history[-1]["lr"]}, done)
            progress.update(task_id, advance=1, description=f"training  loss {step_loss:.4f}")
            if tr["quality_steps"] and done % tr["quality_steps"] == 0 and done < total:
                check_quality(done)
            elif tr["checkpoint_steps"] and done % tr["checkpoint_steps"] == 0 and done < total:
                save_checkpoint(done)
            if tr["sample_steps"] and done % tr["sample_steps"] == 0 and done < total:
                write_grid(done)
            if on_step is not None:
                on_step(done, step_loss)
    seconds = time.perf_counter() - t0

    if tr["quality_steps"]:
        check_quality(total)
    else:
        save_checkpoint(total)
    tracking.end(acc, tr["log_with"])
    grid = write_grid(total)
    if acc.is_main_process:
        net = acc.unwrap_model(model)
        if ema is not None:
            ema.copy_to(trainable(net))
        _replace_dir(run / kind.folder, lambda p: net.network.save(p))
        _replace_dir(run / COND_DIR, lambda p: net.cond.save(p))
        write_model_index(run, kind.folder)
        write_json(run / "history.json", history)
        from sd_core.diffusion.figures import loss_curve

        loss_curve(history, run / "loss.png")
    acc.wait_for_everyone()
    last = history[-10:]
    best = run_state.best[0] if run_state.best else None
    return {"run": run, "steps": total, "start": start, "seconds": seconds,
            "best": {"checkpoint": best[1], "kid": best[0]} if best else None,
            "final_loss": sum(h["loss"] for h in last) / max(1, len(last)), "grid": grid,
            "images": len(rows), "conditions": [t.name for t in tasks]}


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
