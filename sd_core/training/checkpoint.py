"""Run folders and checkpoints, shared by ``sd train`` and ``sd diffusion train``.

```
<run>/config.toml            the resolved experiment file
<run>/run.json               (sd train) what a checkpoint needs to be rebuilt: tasks, backbone...
<run>/state.json             the latest checkpoint, the best ones, the checkpoints sd wrote
<run>/history.json           losses per step and evaluation results
<run>/checkpoints/step-000120/
    model.safetensors        weights
    optimizer.json/.safetensors, scheduler.json, ema.json/.safetensors (diffusion)
                             training state without pickle (see sd_core.runs.safe_state)
    rng-<rank>.json/.safetensors  random state of each process
    position.json            step, epoch, batches done in the epoch, ...
```

A checkpoint is written to a hidden temporary folder and renamed, then ``state.json`` is
replaced; a run killed at any moment resumes from the last complete checkpoint. Only checkpoint
folders listed in ``state.json`` as written by sd are ever replaced or pruned; anything else a
user keeps under ``checkpoints/`` stays. Nothing is read with pickle: a damaged or crafted file
ends in an error naming it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sd_core.errors import SdError
from sd_core.runs.files import atomic_write_bytes, atomic_write_text
from sd_core.runs.safe_state import load_state, load_tensors, save_state

CHECKPOINTS = "checkpoints"


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=True) + "\n"


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, dumps(data))


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SdError(f"{path} is missing; is {path.parent} a run folder of `sd train`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SdError(f"{path}: cannot be read ({exc})") from None


@dataclass
class RunState:
    """``state.json``: the checkpoints that exist and why they are kept."""

    latest: str = ""
    best: list[list] = field(default_factory=list)  # [[value, checkpoint name], ...] best first
    bad_evals: int = 0  # evaluations since the selection metric last improved
    finished: bool = False
    written: list[str] = field(default_factory=list)  # checkpoint folders sd wrote (may prune)

    @classmethod
    def read(cls, run: Path) -> "RunState":
        path = run / "state.json"
        if not path.is_file():
            return cls()
        data = read_json(path)
        try:
            state = cls(**data)
            state.best = [[float(v), str(n)] for v, n in state.best]
        except (TypeError, ValueError):
            raise SdError(f"{path}: not a state file written by sd") from None
        if "written" not in data:  # written by an older sd, which kept only its own folders
            state.written = sorted({state.latest, *(n for _, n in state.best)} - {""})
        state.check_names(path)
        return state

    def check_names(self, path: Path) -> None:
        """Every name read from ``state.json`` must be a checkpoint folder name sd writes
        (``step-NNNNNN``): pruning deletes by these names, so ``"../../victim"`` in a shared or
        downloaded run must stop the command before anything is deleted."""
        if not isinstance(self.written, list) or not isinstance(self.latest, str):
            raise SdError(f"{path}: not a state file written by sd")
        named = [("latest", self.latest), *(("best", n) for _, n in self.best),
                 *(("written", n) for n in self.written)]
        for key, name in named:
            if name and not (isinstance(name, str) and CHECKPOINT_NAME.fullmatch(name)):
                raise SdError(f"{path}: {key} names {name!r}, not a checkpoint folder sd writes "
                              "(step-NNNNNN); nothing was deleted")

    def write(self, run: Path) -> None:
        write_json(run / "state.json", asdict(self))

    def best_name(self) -> str:
        return self.best[0][1] if self.best else self.latest


#: Files and folders of a classifier run folder; a new run refuses a folder holding any of them.
RUN_FILES = ("config.toml", "run.json", "state.json", "history.json", "metrics.json", "curves.png")


def start_log(run: Path):
    """``RUN/.sd/start.writing``: the top-level names a run's start writes, logged before each is
    written. A run killed before its first checkpoint (no state.json) is then known as sd's own:
    a new start or ``--resume`` begins it again instead of refusing its files for ever."""
    from sd_core.runs.owned import STATE_DIR, IntentLog

    return IntentLog(run / STATE_DIR / "start.writing")


def unfinished_start(run: Path) -> bool:
    """A start of sd's in ``run`` that was killed before its first checkpoint."""
    return not (run / "state.json").is_file() and bool(start_log(run).read())


def check_fresh_run(run: Path, names: tuple[str, ...] = RUN_FILES) -> None:
    """A new run writes these names in ``run``: refuse when one is there already (not ours; the
    start log of an unfinished start names what is)."""
    ours = start_log(run).read() if not (run / "state.json").is_file() else set()
    taken = [n for n in names if ((run / n).exists() or (run / n).is_symlink()) and n not in ours]
    if taken:
        raise SdError(f"{run / taken[0]} exists and was not written by this run; sd does not replace "
                      "it (train into another folder with --out, or move it away)")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


#: the names checkpoint_name gives (a step of 6 or more digits)
CHECKPOINT_NAME = re.compile(r"step-[0-9]{6,}")


def save_checkpoint(run: Path, state: RunState, name: str, model: torch.nn.Module, optimizer, scheduler,
                    position: dict[str, Any], rank_states: list[torch.Tensor],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a complete checkpoint folder atomically (main process only) and record it in
    ``state.written``. ``extra`` holds more objects with ``state_dict()`` (an EMA, say)."""
    final = run / CHECKPOINTS / name
    if final.exists() and name not in state.written:
        raise SdError(f"{final} exists and was not written by this run; sd does not replace it "
                      "(move it away, or train into another folder with --out)")
    tmp = run / CHECKPOINTS / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from safetensors.torch import save

    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(tmp / "model.safetensors", save(weights))
    save_state(tmp, "optimizer", optimizer.state_dict())
    save_state(tmp, "scheduler", scheduler.state_dict())
    for key, obj in (extra or {}).items():
        save_state(tmp, key, obj.state_dict())
    for rank, rng in enumerate(rank_states):
        save_state(tmp, f"rng-{rank}", {"torch": rng})
    atomic_write_text(tmp / "position.json", dumps(position))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if name not in state.written:
        state.written.append(name)
    return final


def gather_rng_states(acc) -> list[torch.Tensor]:
    from accelerate.utils import gather_object

    return gather_object([torch.get_rng_state()]) if acc.num_processes > 1 else [torch.get_rng_state()]


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_tensors(path)


def _load_into(obj: Any, state: Any, path: Path) -> None:
    try:
        obj.load_state_dict(state)
    except Exception as exc:  # wrong shapes or keys: not a checkpoint of this model
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SdError(f"{path}: does not match this run ({text})") from None


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer=None, scheduler=None,
                    rank: int = 0, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load weights (and optimizer, scheduler, extras, this process's random state); returns
    the position. Nothing is unpickled; a damaged file ends in an SdError naming it."""
    if not folder.is_dir():
        raise SdError(f"checkpoint {folder} does not exist")
    legacy = [p.name for p in folder.iterdir() if p.suffix in (".pkl", ".pt", ".bin")]
    if legacy and not (folder / "position.json").exists() or \
            optimizer is not None and not (folder / "optimizer.json").exists() and legacy:
        raise SdError(f"{folder} was written by an older sd in a pickled format that sd no longer "
                      "loads; start a new run (its weights, if any, are in model.safetensors)")
    _load_into(model, load_weights(folder / "model.safetensors"), folder / "model.safetensors")
    if optimizer is not None:
        _load_into(optimizer, load_state(folder, "optimizer"), folder / "optimizer.json")
    if scheduler is not None:
        _load_into(scheduler, load_state(folder, "scheduler"), folder / "scheduler.json")
    for key, obj in (extra or {}).items():
        _load_into(obj, load_state(folder, key), folder / f"{key}.json")
    if (folder / f"rng-{rank}.json").is_file():
        rng = load_state(folder, f"rng-{rank}")
        if not isinstance(rng, dict) or not isinstance(rng.get("torch"), torch.Tensor):
            raise SdError(f"{folder / f'rng-{rank}.json'}: not a random state written by sd")
        try:
            torch.set_rng_state(rng["torch"])
        except Exception:
            raise SdError(f"{folder / f'rng-{rank}.json'}: not a valid random state") from None
    position = read_json(folder / "position.json")
    if not isinstance(position, dict) or not isinstance(position.get("step"), int):
        raise SdError(f"{folder / 'position.json'}: not a checkpoint position written by sd")
    return position


def prune(run: Path, state: RunState, keep_latest: int = 1) -> None:
    """Delete checkpoints sd wrote that are neither among the ``keep_latest`` newest nor among the
    best; folders sd did not write (listed nowhere in ``state.written``) are never touched."""
    newest = sorted(state.written)[-keep_latest:] if keep_latest > 0 else []
    keep = {state.latest, *newest, *(name for _, name in state.best)}
    folder = run / CHECKPOINTS
    for name in [n for n in state.written if n not in keep]:
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        state.written.remove(name)


def rank_best(state: RunState, value: float, name: str, higher_is_better: bool, k: int) -> bool:
    """Insert a checkpoint's score into the best-k list; returns True if it is the new best."""
    previous = state.best[0][0] if state.best else None
    if value == value:  # not NaN
        entries = [e for e in state.best if e[1] != name] + [[value, name]]
        entries.sort(key=lambda e: -e[0] if higher_is_better else e[0])
        state.best = entries[:k]
    improved = value == value and (previous is None or
                                   (value > previous if higher_is_better else value < previous))
    state.bad_evals = 0 if improved else state.bad_evals + 1
    return improved
