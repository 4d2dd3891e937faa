"""The training loop of ``sd train``, on accelerate.

The same code runs in one process or several (``accelerate launch``, ``torchrun``): every process
computes the same epoch order from (seed, epoch) and takes every world-th batch of it. A resumed
run restores weights, optimizer, schedule, random states and the position in the epoch, so it
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from sd_core import __version__
from sd_core.config.experiment import Experiment
from sd_core.data.images import ProcessedImages
from sd_core.data.sampling import balanced_weights, epoch_batches, epoch_order
from sd_core.errors import ConfigError, SdError
from sd_core.runs import tracking
from sd_core.training import checkpoint as ckpt
from sd_core.training.components import TrainData, balance_groups, load_data, make_optimizer, make_schedule
from sd_core.training.evaluate import evaluate
from sd_core.training.losses import task_losses, total_loss
from sd_core.training.model import build_model


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


@dataclass
class _Training:
    """One run of :func:`train`: its set-up, and the state that changes step by step."""

    exp: Experiment
    acc: Any
    run: Path
    registry: Any
    data: TrainData
    model: Any
    optimizer: Any
    scheduler: Any
    weights: Any  # the balanced sampling weights, or None
    select_key: str
    higher: bool
    wanted: list
    world: int
    rank: int
    steps_per_epoch: int
    total: int
    run_info: dict
    progress: Any = None
    on_step: Callable[[int, float], None] | None = None
    state: ckpt.RunState = field(default_factory=ckpt.RunState)
    history: dict = field(default_factory=lambda: {"train": [], "eval": []})
    step: int = 0
    epoch: int = 0
    done_in_epoch: int = 0
    stop: bool = False

    @property
    def t(self) -> dict:
        return self.exp["training"]

    @property
    def batch(self) -> int:
        return self.exp["data"]["batch_size"]

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    def save(self, reason: str) -> None:
        """A checkpoint of the current step, the history, state.json; then prune."""
        acc, run, state = self.acc, self.run, self.state
        rngs = gather_rng_states(acc)
        name = ckpt.checkpoint_name(self.step)
        if self.main:
            pos = {"step": self.step, "epoch": self.epoch, "batch": self.done_in_epoch, "reason": reason}
            ckpt.save_checkpoint(run, state, name, acc.unwrap_model(self.model), self.optimizer, self.scheduler,
                                 pos, rngs)
            ckpt.write_json(run / "history.json", self.history)
        state.latest = name  # every process: the one they all load at the end
        if self.main:
            state.write(run)
            ckpt.prune(run, state)
            state.write(run)
        acc.wait_for_everyone()

    def validate(self) -> bool:
        """Evaluate on the validation split; returns True when early stopping says stop."""
        data, t = self.data, self.t
        if data.val is None:
            return False
        metrics = evaluate(self.acc, self.model, data.val, data.tasks, self.batch, self.registry, self.wanted)
        entry = {"step": self.step, "epoch": self.epoch + self.done_in_epoch / max(1, self.steps_per_epoch),
                 **{f"val/{k}": v for k, v in metrics.items()}}
        self.history["eval"].append(entry)
        tracking.log(self.acc, t["log_with"], {f"val/{k}": v for k, v in metrics.items()}, self.step)
        value = metrics["loss"] if self.select_key == "loss" else metrics[self.select_key]
        ckpt.rank_best(self.state, value, ckpt.checkpoint_name(self.step), self.higher, t["best_k"])
        if self.progress is not None and self.main:
            self.progress.evaluated(self.step, metrics, self.select_key)
        self.save("eval")
        return bool(t["early_stopping"]) and self.state.bad_evals >= t["early_stopping"]


def _check_run_folder(run: Path, resume: bool) -> None:
    """A fresh run needs a folder without one; --resume needs one to continue (a start killed
    before its first checkpoint is begun again: see :func:`_effective_resume`)."""
    state_file = run / "state.json"
    if state_file.is_file() and not resume:
        raise SdError(f"{run} already holds a run; use --resume to continue it, or choose "
                      "another output folder (--out)")
    if resume and not state_file.is_file():
        raise SdError(f"--resume: {run} has no run to continue (no state.json)")
    if not resume:
        ckpt.check_fresh_run(run)


def _effective_resume(run: Path, resume: bool) -> bool:
    """--resume of a run killed before its first checkpoint starts it again (nothing to resume)."""
    return resume and not ckpt.unfinished_start(run)


def _wanted_metrics(t: dict, select_key: str) -> list:
    """The [training] metrics, and the selection metric's own where it is not among them."""
    wanted = list(t["metrics"])
    if wanted and select_key != "loss" and select_key.rpartition("/")[2] not in wanted:
        wanted.append(select_key.rpartition("/")[2])
    return wanted


def _run_info(exp: Experiment, data: TrainData, select_key: str, higher: bool, world: int,
              steps_per_epoch: int, total: int) -> dict:
    """``run.json``: what the run is of, and what a resume must find unchanged."""
    m = exp["model"]
    return {
        "sd_version": __version__, "tasks": [x.as_dict() for x in data.tasks],
        "backbone": m["backbone"], "options": m["options"], "embedding_dim": m["embedding_dim"],
        "dropout": m["dropout"], "image_size": data.train.size,
        "datasets": exp["data"]["datasets"], "sources": {s.dataset: str(s.root) for s in data.sources},
        "splits": {k: exp["data"][f"{k}_split"] for k in ("train", "val", "test")},
        "selection_metric": select_key, "higher_is_better": higher, "world_size": world,
        "steps_per_epoch": steps_per_epoch, "total_steps": total,
    }


def _set_up(exp: Experiment, registry: Any, project: Any, run: Path, acc: Any) -> _Training:
    """Data, selection metric, model, optimizer, schedule and sampling weights of a new run."""
    t = exp["training"]
    data = load_data(exp, registry, project)
    from sd_core.training.settings import selection_metric

    select_key, higher = selection_metric(exp, data.tasks)
    wanted = _wanted_metrics(t, select_key)
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
    run_info = _run_info(exp, data, select_key, higher, world, steps_per_epoch, total)
    return _Training(exp, acc, run, registry, data, model, optimizer, scheduler, weights, select_key, higher,
                     wanted, world, rank, steps_per_epoch, total, run_info)


def _resume(r: _Training) -> None:
    """Weights, optimizer, schedule, random states, position and history of the latest checkpoint."""
    run = r.run
    r.state = ckpt.RunState.read(run)
    if not r.state.latest:
        raise SdError(f"--resume: {run} has no complete checkpoint yet; start it again without --resume")
    saved = ckpt.read_json(run / "run.json")
    for key in ("tasks", "backbone", "options", "image_size", "world_size", "total_steps"):
        if saved.get(key) != r.run_info[key]:
            raise SdError(f"--resume: {key} differs from the run in {run} "
                          f"({saved.get(key)!r} there, {r.run_info[key]!r} now); start a new run")
    position = ckpt.load_checkpoint(run / ckpt.CHECKPOINTS / r.state.latest, r.model, r.optimizer,
                                    r.scheduler, r.rank)
    history = ckpt.read_json(run / "history.json") if (run / "history.json").is_file() else r.history
    r.history = {"train": [h for h in history["train"] if h["step"] <= position["step"]],
                 "eval": [h for h in history["eval"] if h["step"] <= position["step"]]}
    r.step, r.epoch, r.done_in_epoch = position["step"], position["epoch"], position["batch"]


def _start_folder(r: _Training) -> None:
    """A new run's folder, with run.json and the experiment's config.toml."""
    from sd_core.runs.files import atomic_write_text

    r.run.mkdir(parents=True, exist_ok=True)
    log = ckpt.start_log(r.run)
    log.add("run.json")
    ckpt.write_json(r.run / "run.json", r.run_info)
    log.add("config.toml")
    atomic_write_text(r.run / "config.toml", r.exp.dumps())
    log.close()


def _train_step(r: _Training, b: dict) -> float:
    """One optimizer step on the batch ``b``, logged; returns the loss (averaged over processes)."""
    acc, t = r.acc, r.t
    images = b["image"].to(acc.device, non_blocking=True)
    targets = {k: v.to(acc.device) for k, v in b["targets"].items()}
    with acc.autocast():
        losses = task_losses(r.model(images), targets)
        loss = total_loss(losses, t["task_weights"])
    acc.backward(loss)
    if t["grad_clip"]:
        acc.clip_grad_norm_(r.model.parameters(), t["grad_clip"])
    r.optimizer.step()
    r.scheduler.step()
    r.optimizer.zero_grad(set_to_none=True)
    r.step += 1
    r.done_in_epoch += 1
    mean_loss = acc.reduce(loss.detach(), "mean").item() if r.world > 1 else loss.item()
    r.history["train"].append({"step": r.step, "loss": mean_loss, "lr": r.scheduler.get_last_lr()[0],
                               **{f"loss/{k}": v.item() for k, v in losses.items()}})
    tracking.log(acc, t["log_with"], {k.replace("loss/", "train/loss/") if k.startswith("loss/")
                                      else f"train/{k}": v for k, v in r.history["train"][-1].items()
                                      if k != "step"}, r.step)
    if r.progress is not None and r.main:
        r.progress.advance(r.step, mean_loss)
    if r.on_step is not None:
        r.on_step(r.step, mean_loss)
    return mean_loss


def _validate_or_save(r: _Training, finished_epoch: bool) -> None:
    """After a step: validate (and checkpoint) when the eval strategy says so, else checkpoint at
    the end of an epoch or of the run, or every save_steps."""
    t = r.t
    evaluated = False
    strategy = t["eval_strategy"]
    if strategy == "steps" and r.step % t["eval_steps"] == 0 or \
            strategy == "epoch" and finished_epoch or strategy != "none" and r.stop:
        r.model.eval()
        r.stop = r.validate() or r.stop
        r.model.train()
        evaluated = True
    if not evaluated and (finished_epoch or r.stop or t["save_steps"] and r.step % t["save_steps"] == 0):
        r.save("epoch" if finished_epoch else "steps")


def _run_epoch(r: _Training) -> None:
    """The rest of the current epoch, or up to the step where the run stops."""
    order = epoch_order(len(r.data.train), r.epoch, r.t["seed"], r.weights)
    batches = epoch_batches(order, r.batch, r.world, r.rank)
    for b in batch_stream(r.data.train, batches[r.done_in_epoch:], r.exp["data"]["workers"]):
        _train_step(r, b)
        finished_epoch = r.done_in_epoch == len(batches)
        if finished_epoch:
            r.epoch, r.done_in_epoch = r.epoch + 1, 0
        r.stop = r.step >= r.total
        _validate_or_save(r, finished_epoch)
        if r.stop:
            break
    if not batches:
        raise SdError("the training split gives no batch")


def train(exp: Experiment, registry: Any, project: Any, run: Path, resume: bool = False,
          on_step: Callable[[int, float], None] | None = None, progress: Any = None) -> TrainResult:
    """Train (or resume) the experiment into the run folder ``run``; the main process holds the
    folder's lock meanwhile (sd_core.runs.lock: a second run into it refuses at once)."""
    from sd_core.runs.lock import main_process_lock

    with main_process_lock(run):
        return _train(exp, registry, project, run, resume, on_step, progress)


def _train(exp: Experiment, registry: Any, project: Any, run: Path, resume: bool,
           on_step: Callable[[int, float], None] | None, progress: Any) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    t = exp["training"]
    acc = Accelerator(mixed_precision=t["mixed_precision"], cpu=not torch.cuda.is_available(),
                      **tracking.accelerator_kwargs(t["log_with"], run))
    resume = _effective_resume(run, resume)
    if acc.is_main_process:
        _check_run_folder(run, resume)
    set_seed(t["seed"])
    r = _set_up(exp, registry, project, run, acc)
    r.progress, r.on_step = progress, on_step
    if resume:
        _resume(r)
    elif r.main:
        _start_folder(r)
    acc.wait_for_everyone()

    r.model, r.optimizer = acc.prepare(r.model, r.optimizer)
    tracking.start(acc, t["log_with"], "sd-train", {k: exp[k] for k in ("data", "model", "training")})
    r.stop = r.state.finished or r.step >= r.total
    if progress is not None and r.main:
        progress.start(r.total, r.step)
    r.model.train()
    while not r.stop:
        _run_epoch(r)
    if r.main:
        r.state.finished = True
        r.state.write(run)
        ckpt.start_log(run).remove()  # state.json says what the run is now
    tracking.end(acc, t["log_with"])
    acc.wait_for_everyone()
    return finish(acc, run, r.data, registry, r.wanted, r.model, r.state, r.history, r.progress, r.batch)


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
               "val": val, "test": test, "splits": info["splits"], "split_check": data.split_check}
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
