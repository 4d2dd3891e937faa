"""The training loop of ``sd train``, on accelerate.

The same code runs in one process or several (``accelerate launch``, ``torchrun``): every process
computes the same epoch order from (seed, epoch) and takes every world-th batch of it. A resumed
run restores weights, optimizer, schedule, random states and the position in the epoch, so it
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from sd_core import __version__
from sd_core.data.images import ProcessedImages
from sd_core.data.sampling import balanced_weights, dataset_class_groups, epoch_batches, epoch_order
from sd_core.data.select import read_rows, sources_for
from sd_core.data.sources import Source
from sd_core.data.tasks import check_trainable, resolve_tasks, standardised
from sd_core.errors import ConfigError, SdError
from sd_core.config.experiment import Experiment
from sd_core.plugins.specs import CLASSIFICATION
from sd_core.runs import tracking
from sd_core.training import checkpoint as ckpt
from sd_core.training.evaluate import evaluate
from sd_core.training.losses import task_losses, total_loss
from sd_core.training.model import build_model


@dataclass
class TrainData:
    tasks: list
    train: ProcessedImages
    val: ProcessedImages | None
    test: ProcessedImages | None
    sources: list[Source]


def load_data(exp: Experiment, registry: Any, project: Any) -> TrainData:
    """Rows of every split, tasks resolved and checked, image datasets built."""
    d = exp["data"]
    paths = {k: exp.path(v) for k, v in d["paths"].items()}
    sources = sources_for(d["datasets"], paths, project, registry)
    train_rows = read_rows(sources, d["train_split"])
    extra = [Source(exp.path(p)) for p in d["extra_train"]]
    train_rows += read_rows(extra, "train", allowed=d["datasets"])
    if not train_rows:
        raise SdError(f"the {d['train_split']!r} split of {', '.join(d['datasets'])} has no rows")
    val_rows = read_rows(sources, d["val_split"]) if d["val_split"] else []
    test_rows = read_rows(sources, d["test_split"]) if d["test_split"] else []
    tasks = resolve_tasks(d["tasks"], d["datasets"], registry, train_rows + val_rows + test_rows)
    check_trainable(tasks, train_rows, d["train_split"])
    tasks = [standardised(t, train_rows) for t in tasks]
    size, cache = d["image_size"] or None, d["cache_mb"]
    train = ProcessedImages(train_rows, tasks, size, cache)
    val = ProcessedImages(val_rows, tasks, train.size, cache) if val_rows else None
    test = ProcessedImages(test_rows, tasks, train.size, cache) if test_rows else None
    return TrainData(tasks, train, val, test, sources)


def balance_groups(exp: Experiment, data: TrainData) -> list | None:
    d = exp["data"]
    if not d["balanced"]:
        return None
    name = d["balance_task"] or next((t.name for t in data.tasks if t.kind == CLASSIFICATION), "")
    if not name:
        return None
    if name not in data.train.targets:
        raise exp.error("data", "balance_task", f"= {name!r} is not one of [data] tasks "
                        f"({', '.join(d['tasks'])})")
    from sd_core.meta import double_weighting

    warning = double_weighting([r["_root"] for r in data.train.rows], d["train_split"])
    if warning:  # a meta set weighted already: say so rather than weigh twice
        sys.stderr.write(f"warning: {exp.source}: [data] balanced: {warning}\n")
        return None
    return dataset_class_groups(data.train.rows, next(t for t in data.tasks if t.name == name))


def make_optimizer(params, t: dict):
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    cls = torch.optim.AdamW if t["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=t["lr"], weight_decay=t["weight_decay"])


def make_schedule(optimizer, t: dict, total_steps: int):
    warm, kind = t["warmup_steps"], t["schedule"]

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        if kind == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_stream(data: ProcessedImages, batches: list[list[int]], workers: int):
    """Collated batches in the given order: fetched here, or by ``workers`` loader processes
    (worth it when the images do not fit the cache and every step decodes PNGs)."""
    if not workers:
        for indices in batches:
            yield data.__getitems__(indices)
        return
    from sd_core.data.images import batch_collate

    # an own generator: the loader would otherwise draw its worker seed from the global random
    # state and change the dropout masks of the run (and break exact resume)
    yield from torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=workers,
                                           collate_fn=batch_collate, generator=torch.Generator(),
                                           pin_memory=torch.cuda.is_available())


gather_rng_states = ckpt.gather_rng_states


@dataclass
class TrainResult:
    run: Path
    steps: int
    best: str
    val: dict
    test: dict
    history: dict


def train(exp: Experiment, registry: Any, project: Any, run: Path, resume: bool = False,
          on_step: Callable[[int, float], None] | None = None, progress: Any = None) -> TrainResult:
    """Train (or resume) the experiment into the run folder ``run``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    t = exp["training"]
    acc = Accelerator(mixed_precision=t["mixed_precision"], cpu=not torch.cuda.is_available(),
                      **tracking.accelerator_kwargs(t["log_with"], run))
    main = acc.is_main_process
    state_file = run / "state.json"
    if main:
        if state_file.is_file() and not resume:
            raise SdError(f"{run} already holds a run; use --resume to continue it, or choose "
                          "another output folder (--out)")
        if resume and not state_file.is_file():
            raise SdError(f"--resume: {run} has no run to continue (no state.json)")
        if not resume:
            ckpt.check_fresh_run(run)
    set_seed(t["seed"])
    data = load_data(exp, registry, project)
    from sd_core.training.settings import selection_metric

    select_key, higher = selection_metric(exp, data.tasks)
    wanted = list(t["metrics"])
    if wanted and select_key != "loss" and select_key.rpartition("/")[2] not in wanted:
        wanted.append(select_key.rpartition("/")[2])
    m = exp["model"]
    model = build_model(registry, m["backbone"], m["options"], data.tasks, m["embedding_dim"],
                        m["dropout"], data.train.size)
    optimizer = make_optimizer(model.parameters(), t)
    batch = exp["data"]["batch_size"]
    world, rank = acc.num_processes, acc.process_index
    steps_per_epoch = len(epoch_batches(range(len(data.train)), batch, world, rank))
    total = t["max_steps"] or t["epochs"] * steps_per_epoch
    scheduler = make_schedule(optimizer, t, total)
    weights = None
    groups = balance_groups(exp, data)
    if groups is not None:
        weights = balanced_weights(groups, exp["data"]["max_sampling_weight"])

    run_info = {
        "sd_version": __version__, "tasks": [x.as_dict() for x in data.tasks],
        "backbone": m["backbone"], "options": m["options"], "embedding_dim": m["embedding_dim"],
        "dropout": m["dropout"], "image_size": data.train.size,
        "datasets": exp["data"]["datasets"], "sources": {s.dataset: str(s.root) for s in data.sources},
        "splits": {k: exp["data"][f"{k}_split"] for k in ("train", "val", "test")},
        "selection_metric": select_key, "higher_is_better": higher, "world_size": world,
        "steps_per_epoch": steps_per_epoch, "total_steps": total,
    }
    state = ckpt.RunState()
    history: dict[str, list] = {"train": [], "eval": []}
    position = {"step": 0, "epoch": 0, "batch": 0}
    if resume:
        state = ckpt.RunState.read(run)
        if not state.latest:
            raise SdError(f"--resume: {run} has no complete checkpoint yet; start it again without --resume")
        saved = ckpt.read_json(run / "run.json")
        for key in ("tasks", "backbone", "options", "image_size", "world_size", "total_steps"):
            if saved.get(key) != run_info[key]:
                raise SdError(f"--resume: {key} differs from the run in {run} "
                              f"({saved.get(key)!r} there, {run_info[key]!r} now); start a new run")
        position = ckpt.load_checkpoint(run / ckpt.CHECKPOINTS / state.latest, model, optimizer,
                                        scheduler, rank)
        history = ckpt.read_json(run / "history.json") if (run / "history.json").is_file() else history
        history = {"train": [h for h in history["train"] if h["step"] <= position["step"]],
                   "eval": [h for h in history["eval"] if h["step"] <= position["step"]]}
    elif main:
        run.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(run / "run.json", run_info)
        from sd_core.runs.files import atomic_write_text

        atomic_write_text(run / "config.toml", exp.dumps())
    acc.wait_for_everyone()

    model, optimizer = acc.prepare(model, optimizer)
    tracking.start(acc, t["log_with"], "sd-train", {k: exp[k] for k in ("data", "model", "training")})
    task_weights = t["task_weights"]
    step, epoch, done_in_epoch = position["step"], position["epoch"], position["batch"]
    stop = state.finished or step >= total

    def save(reason: str) -> None:
        rngs = gather_rng_states(acc)
        name = ckpt.checkpoint_name(step)
        if main:
            pos = {"step": step, "epoch": epoch, "batch": done_in_epoch, "reason": reason}
            ckpt.save_checkpoint(run, state, name, acc.unwrap_model(model), optimizer, scheduler, pos, rngs)
            ckpt.write_json(run / "history.json", history)
        state.latest = name  # every process: the one they all load at the end
        if main:
            state.write(run)
            ckpt.prune(run, state)
            state.write(run)
        acc.wait_for_everyone()

    def run_eval() -> bool:
        """Evaluate on the validation split; returns True when early stopping says stop."""
        if data.val is None:
            return False
        metrics = evaluate(acc, model, data.val, data.tasks, batch, registry, wanted)
        entry = {"step": step, "epoch": epoch + done_in_epoch / max(1, steps_per_epoch),
                 **{f"val/{k}": v for k, v in metrics.items()}}
        history["eval"].append(entry)
        tracking.log(acc, t["log_with"], {f"val/{k}": v for k, v in metrics.items()}, step)
        value = metrics["loss"] if select_key == "loss" else metrics[select_key]
        ckpt.rank_best(state, value, ckpt.checkpoint_name(step), higher, t["best_k"])
        if progress is not None and main:
            progress.evaluated(step, metrics, select_key)
        save("eval")
        return bool(t["early_stopping"]) and state.bad_evals >= t["early_stopping"]

    if progress is not None and main:
        progress.start(total, step)
    model.train()
    while not stop:
        order = epoch_order(len(data.train), epoch, t["seed"], weights)
        batches = epoch_batches(order, batch, world, rank)
        for b in batch_stream(data.train, batches[done_in_epoch:], exp["data"]["workers"]):
            images = b["image"].to(acc.device, non_blocking=True)
            targets = {k: v.to(acc.device) for k, v in b["targets"].items()}
            with acc.autocast():
                losses = task_losses(model(images), targets)
                loss = total_loss(losses, task_weights)
            acc.backward(loss)
            if t["grad_clip"]:
                acc.clip_grad_norm_(model.parameters(), t["grad_clip"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            done_in_epoch += 1
            mean_loss = acc.reduce(loss.detach(), "mean").item() if world > 1 else loss.item()
            history["train"].append({"step": step, "loss": mean_loss, "lr": scheduler.get_last_lr()[0],
                                     **{f"loss/{k}": v.item() for k, v in losses.items()}})
            tracking.log(acc, t["log_with"], {k.replace("loss/", "train/loss/") if k.startswith("loss/")
                                               else f"train/{k}": v for k, v in history["train"][-1].items()
                                               if k != "step"}, step)
            if progress is not None and main:
                progress.advance(step, mean_loss)
            if on_step is not None:
                on_step(step, mean_loss)
            finished_epoch = done_in_epoch == len(batches)
            if finished_epoch:
                epoch, done_in_epoch = epoch + 1, 0
            stop = step >= total
            evaluated = False
            strategy = t["eval_strategy"]
            if strategy == "steps" and step % t["eval_steps"] == 0 or \
                    strategy == "epoch" and finished_epoch or strategy != "none" and stop:
                model.eval()
                stop = run_eval() or stop
                model.train()
                evaluated = True
            if not evaluated and (finished_epoch or stop or t["save_steps"] and step % t["save_steps"] == 0):
                save("epoch" if finished_epoch else "steps")
            if stop:
                break
        if not batches:
            raise SdError("the training split gives no batch")
    if main:
        state.finished = True
        state.write(run)
    tracking.end(acc, t["log_with"])
    acc.wait_for_everyone()
    return finish(acc, run, data, registry, wanted, model, state, history, progress, batch)


def finish(acc, run: Path, data: TrainData, registry: Any, wanted, model, state: ckpt.RunState,
           history: dict, progress: Any, batch: int) -> TrainResult:
    """Test the best checkpoint; write metrics.json and the curves."""
    from sd_core.training.report import write_curves

    best = state.best_name()
    unwrapped = acc.unwrap_model(model)
    ckpt.load_checkpoint(run / ckpt.CHECKPOINTS / best, unwrapped)
    model.eval()
    val = evaluate(acc, model, data.val, data.tasks, batch, registry, wanted) if data.val else {}
    test = evaluate(acc, model, data.test, data.tasks, batch, registry, wanted) if data.test else {}
    info = ckpt.read_json(run / "run.json")
    summary = {"best_checkpoint": best, "selection_metric": info["selection_metric"],
               "best": [{"value": v, "checkpoint": n} for v, n in state.best],
               "steps": history["train"][-1]["step"] if history["train"] else 0,
               "val": val, "test": test, "splits": info["splits"]}
    if acc.is_main_process:
        ckpt.write_json(run / "history.json", history)
        ckpt.write_json(run / "metrics.json", summary)
        write_curves(history, run / "curves.png", info["selection_metric"])
    acc.wait_for_everyone()
    if progress is not None and acc.is_main_process:
        progress.stop()
    return TrainResult(run, summary["steps"], best, val, test, history)


def check_runnable(exp: Experiment) -> None:
    if exp["training"]["eval_strategy"] != "none" and not exp["data"]["val_split"]:
        raise ConfigError(f"{exp.source}: [training] eval_strategy = "
                          f"{exp['training']['eval_strategy']!r} needs [data] val_split")
