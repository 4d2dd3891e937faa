"""Run folders and checkpoints of ``sd train``.

```
<run>/config.toml            the resolved experiment file
<run>/run.json               what a checkpoint needs to be rebuilt: tasks (classes, scaling),
                             backbone and options, image size, data sources, selection metric
<run>/state.json             the latest checkpoint, the best ones, early-stopping count
<run>/history.json           training losses per step and evaluation results
<run>/metrics.json           summary at the end: best checkpoint, validation and test metrics
<run>/curves.png             loss and metric curves
<run>/checkpoints/step-000120/
    model.safetensors        weights (loaded without unpickling)
    optimizer.pt scheduler.pt  tensors and numbers only (torch.load(weights_only=True))
    rng-<rank>.pt            random state of each process
    position.json            step, epoch, batches done in the epoch, history length
```

A checkpoint is written to a hidden temporary folder and renamed, then ``state.json`` is
replaced; a run killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sd_core.errors import SdError
from sd_core.io import atomic_write_text

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
    except (OSError, json.JSONDecodeError) as exc:
        raise SdError(f"{path}: cannot be read ({exc})") from None


@dataclass
class RunState:
    """``state.json``: the checkpoints that exist and why they are kept."""

    latest: str = ""
    best: list[list] = field(default_factory=list)  # [[value, checkpoint name], ...] best first
    bad_evals: int = 0  # evaluations since the selection metric last improved
    finished: bool = False

    @classmethod
    def read(cls, run: Path) -> "RunState":
        path = run / "state.json"
        return cls(**read_json(path)) if path.is_file() else cls()

    def write(self, run: Path) -> None:
        write_json(run / "state.json", asdict(self))

    def best_name(self) -> str:
        return self.best[0][1] if self.best else self.latest


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def save_checkpoint(run: Path, name: str, model: torch.nn.Module, optimizer, scheduler,
                    position: dict[str, Any], rank_states: list[torch.Tensor]) -> Path:
    """Write a complete checkpoint folder atomically (main process only)."""
    final = run / CHECKPOINTS / name
    tmp = run / CHECKPOINTS / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    for rank, rng in enumerate(rank_states):
        torch.save(rng, tmp / f"rng-{rank}.pt")
    (tmp / "position.json").write_text(dumps(position), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise SdError(f"{path} is missing") from None
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise SdError(f"{path}: cannot be read ({exc})") from None


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer=None, scheduler=None,
                    rank: int = 0) -> dict[str, Any]:
    """Load weights (and optimizer, scheduler, this process's random state); returns the position."""
    model.load_state_dict(load_weights(folder / "model.safetensors"))
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    rng = folder / f"rng-{rank}.pt"
    if rng.is_file():
        torch.set_rng_state(torch.load(rng, weights_only=True))
    return read_json(folder / "position.json")


def prune(run: Path, state: RunState) -> None:
    """Delete checkpoints that are neither the latest nor among the best."""
    keep = {state.latest, *(name for _, name in state.best)}
    folder = run / CHECKPOINTS
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.is_dir() and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


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
