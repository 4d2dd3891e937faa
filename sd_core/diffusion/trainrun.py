"""The set-up of an ``sd diffusion train`` run (folder checks, accelerator, data, model, optimizer, EMA, resume)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sd_core.config.experiment import Experiment
from sd_core.data.labels import LabelSpec, label_combos
from sd_core.diffusion.conditioning import Conditioning
from sd_core.diffusion.config import kind_options, same_experiment
from sd_core.diffusion.data import caption_table, load_training_data
from sd_core.diffusion.model import COND_DIR, LABELS, MODEL_JSON, SCHEDULER_DIR, UNET_DIR, Denoiser, TextEncoder
from sd_core.diffusion.pipeline import MODEL_INDEX
from sd_core.errors import ConfigError, SdError
from sd_core.plugins.specs import CLASSIFICATION, REGRESSION
from sd_core.preprocess.layout import write_json
from sd_core.runs import tracking
from sd_core.runs.files import atomic_write_text
from sd_core.training import checkpoint as ckpt

CHECKPOINTS = ckpt.CHECKPOINTS
TRAINER_STATE = "trainer.json"
#: What a diffusion run writes at its top level; a new run refuses a folder holding any of them.
RUN_FILES = ("config.toml", "state.json", "history.json", "loss.png", UNET_DIR, COND_DIR,
             SCHEDULER_DIR, LABELS, MODEL_JSON, MODEL_INDEX, "vae", "text_encoder", "tokenizer")

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


@dataclass(eq=False)
class TrainRun:
    """A diffusion run while it trains: what :func:`set_up` built and where training stands."""

    exp: Experiment
    registry: Any
    run: Path
    kind: Any
    acc: Any = None
    say: Callable[..., Any] | None = None  # console.print on the main process, else a no-op
    rows: Any = None
    tasks: Any = None
    images: Any = None
    weights: Any = None
    text_encoder: Any = None  # a TextEncoder, a network that encodes captions itself, or None
    text_table: Any = None
    text_index: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # the Denoiser, as accelerate prepared it
    noise_scheduler: Any = None
    spec: LabelSpec | None = None
    per_epoch: int = 0  # micro-batches per process
    total: int = 0  # optimizer steps of the whole run
    opt: Any = None
    lr_sched: Any = None
    ema: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    run_state: ckpt.RunState = field(default_factory=ckpt.RunState)
    probe: Any = None
    orders: dict[int, list[list[int]]] = field(default_factory=dict)  # the current epoch's batches

    @property
    def d(self) -> dict[str, Any]:
        return self.exp["data"]

    @property
    def m(self) -> dict[str, Any]:
        return self.exp["model"]

    @property
    def tr(self) -> dict[str, Any]:
        return self.exp["training"]

    @property
    def src(self) -> str:
        return str(self.exp.source)

    @property
    def seed(self) -> int:
        return int(self.tr["seed"])

    @property
    def ga(self) -> int:
        return int(self.tr["grad_accum"])


def set_up(exp: Experiment, project: Any, registry: Any, out: str | Path | None, resume: bool,
           console: Any) -> TrainRun:
    """Everything a run trains with, resumed from its latest checkpoint where ``resume``; writes the
    run's description (config, labels, model kind, noise scheduler) on the main process."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    run, latest, kind, config_text = _open_run_folder(exp, registry, out, resume)
    r = TrainRun(exp, registry, run, kind)
    d, tr = r.d, r.tr
    cuda = torch.cuda.is_available()
    r.acc = acc = Accelerator(mixed_precision=tr["mixed_precision"], cpu=not cuda,
                              **tracking.accelerator_kwargs(tr["log_with"], run))
    r.say = console.print if (console is not None and acc.is_main_process) else (lambda *a, **k: None)

    _load_data(r, project)
    _build_model(r)
    r.noise_scheduler = DDPMScheduler(num_train_timesteps=tr["num_train_timesteps"],
                                      beta_schedule=tr["beta_schedule"], prediction_type=tr["prediction_type"])
    text_path = str(r.text_encoder.path) if isinstance(r.text_encoder, TextEncoder) else ""
    r.spec = LabelSpec(list(d["datasets"]), r.tasks, d["image_size"], r.images.stored_size, d["split"],
                       text_path, label_combos(r.rows, r.tasks))

    r.per_epoch = _steps_per_epoch(len(r.rows), d["batch_size"], acc.num_processes)
    r.total = int(tr["steps"]) or max(1, math.ceil(tr["epochs"] * r.per_epoch / r.ga))
    r.opt = torch.optim.AdamW(trainable(r.model), lr=tr["lr"], weight_decay=tr["weight_decay"])
    r.lr_sched = get_cosine_schedule_with_warmup(r.opt, min(tr["warmup_steps"], r.total), r.total)
    r.ema = EMAModel(trainable(r.model), decay=tr["ema_decay"]) if tr["ema_decay"] > 0 else None
    r.model, r.opt = acc.prepare(r.model, r.opt)
    if r.ema is not None:
        r.ema.to(acc.device)
    r.extras = {"ema": r.ema} if r.ema is not None else {}

    _resume(r, latest, resume)
    _write_run_files(r, config_text)
    _prepare_quality_probe(r, project)
    acc.wait_for_everyone()
    _announce(r)
    return r


def _open_run_folder(exp: Experiment, registry: Any, out: str | Path | None,
                     resume: bool) -> tuple[Path, Path | None, Any, str]:
    """The run folder, its latest checkpoint, the model kind and the experiment's text; refuses a
    folder that holds another run or files sd did not write."""
    tr = exp["training"]
    src = str(exp.source)
    _check_precision(tr["mixed_precision"], src)
    run = run_folder(exp, out)
    config_text = exp.dumps()
    latest = latest_checkpoint(run)
    if latest is not None and not resume:
        raise SdError(f"run folder {run} has checkpoints; pass --resume to continue it, or choose "
                      "another folder with --out")
    kind = registry.diffusion_model(exp["model"]["kind"])
    if latest is None:
        ckpt.check_fresh_run(run, tuple(dict.fromkeys((*RUN_FILES, kind.folder))))
    saved = run / "config.toml"
    if resume and latest is not None and saved.is_file() and not same_experiment(saved, exp):
        raise SdError(f"{run} was started with a different experiment (see {saved}); "
                      "resume with the same file and options, or train into another folder with --out")
    return run, latest, kind, config_text


def _load_data(r: TrainRun, project: Any) -> None:
    """The training images and their tasks; the captions' text table with a [model] text_encoder."""
    r.rows, r.tasks, r.images, r.weights = load_training_data(r.exp, project, r.registry)
    if r.m["text_encoder"]:
        r.text_encoder = TextEncoder(r.exp.path(r.m["text_encoder"]), where=f"{r.src}: [model] text_encoder")
        r.text_table, r.text_index = caption_table(r.rows, r.registry, r.text_encoder)


def _build_model(r: TrainRun) -> None:
    """The kind's network (seeded), the conditioning module of the tasks and the Denoiser of both."""
    torch.manual_seed(r.seed)
    r.options = kind_options(r.exp, r.kind)
    try:
        network = r.kind.build(r.d["image_size"], **r.options)
    except ConfigError as exc:
        raise ConfigError(f"{r.src}: {exc}") from None
    if getattr(network, "uses_context", False):  # captions through the network's own text encoder
        if r.text_encoder is not None:
            raise ConfigError(f"{r.src}: [model] text_encoder: kind {r.kind.name!r} encodes captions with its own "
                              "text encoder; set text_encoder = \"\"")
        r.text_encoder = network
        r.text_table, r.text_index = caption_table(r.rows, r.registry, network)
    tasks = r.tasks
    cond = Conditioning({t.name: t.num_classes for t in tasks if t.kind == CLASSIFICATION},
                        [t.name for t in tasks if t.kind == REGRESSION], network.cond_dim,
                        r.text_encoder.dim if isinstance(r.text_encoder, TextEncoder) else 0,
                        classes={t.name: list(t.classes) for t in tasks if t.kind == CLASSIFICATION},
                        stats={t.name: [t.mean, t.std] for t in tasks if t.kind == REGRESSION})
    if hasattr(network, "init_conditioning"):
        network.init_conditioning(cond)
    r.model = Denoiser(network, cond)


def _resume(r: TrainRun, latest: Path | None, resume: bool) -> None:
    """Weights, optimizer, LR schedule, EMA, step and history from the latest checkpoint."""
    r.run_state = ckpt.RunState.read(r.run) if latest is not None else ckpt.RunState()
    if resume and latest is not None:
        ckpt.load_checkpoint(latest, r.acc.unwrap_model(r.model), r.opt, r.lr_sched, r.acc.process_index, r.extras)
        trainer = ckpt.read_json(latest / TRAINER_STATE)
        try:
            r.start, r.history = int(trainer["step"]), list(trainer["history"])
        except (TypeError, KeyError, ValueError):
            raise SdError(f"{latest / TRAINER_STATE}: not a trainer state written by sd") from None
        r.say(f"resuming {r.run} from {latest.name} (step {r.start} of {r.total})")
    elif resume:
        r.say(f"no checkpoint in {r.run}; starting from the beginning")


def _write_run_files(r: TrainRun, config_text: str) -> None:
    """config.toml, labels.json, model.json and the noise scheduler (main process)."""
    if r.acc.is_main_process:
        r.run.mkdir(parents=True, exist_ok=True)
        log = ckpt.start_log(r.run)  # logged before written: a kill before the first checkpoint is ours
        for name in ("config.toml", LABELS, MODEL_JSON, SCHEDULER_DIR):
            log.add(name)
        log.close()
        atomic_write_text(r.run / "config.toml", config_text)
        r.spec.save(r.run / LABELS)
        write_json(r.run / MODEL_JSON, {"kind": r.kind.name, "folder": r.kind.folder, "options": r.options})
        r.noise_scheduler.save_pretrained(str(r.run / SCHEDULER_DIR))


def _prepare_quality_probe(r: TrainRun, project: Any) -> None:
    """With [training] quality_steps: the real validation batch and its classifier (main process)."""
    if r.tr["quality_steps"] and r.acc.is_main_process:
        from sd_core.diffusion.quality import QualityProbe

        r.say("quality checks: preparing the real validation batch and its classifier")
        r.probe = QualityProbe(r.exp, project, r.registry, r.run, r.spec, r.text_encoder)


def _announce(r: TrainRun) -> None:
    d, acc = r.d, r.acc
    r.say(f"{len(r.rows)} {d['split']} images of {', '.join(d['datasets'])} at {d['image_size']}×{d['image_size']}; "
          f"conditions {', '.join(t.name for t in r.tasks)}; {sum(p.numel() for p in r.model.parameters()):,} "
          f"parameters; {r.total} steps of {d['batch_size']}×{r.ga}×{acc.num_processes} images on {acc.device}")
