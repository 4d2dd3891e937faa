"""Pictures and tables of a training run: loss and metric curves, metric tables, progress."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from sd_core.runs.files import atomic_open


def _smooth(values: Sequence[float], n: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def write_curves(history: Mapping[str, list], path: Path, metric: str) -> Path:
    """Training loss per step (and smoothed), validation loss, and the selection metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, evals = history.get("train", []), history.get("eval", [])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    ax = axes[0]
    if train:
        steps = [h["step"] for h in train]
        loss = [h["loss"] for h in train]
        ax.plot(steps, loss, color="0.75", lw=0.8, label="train (step)")
        ax.plot(steps, _smooth(loss, max(1, len(loss) // 25)), color="C0", lw=1.6, label="train (smoothed)")
    if evals:
        ax.plot([h["step"] for h in evals], [h["val/loss"] for h in evals], "o-", color="C3",
                ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (sum over tasks)")
    ax.set_title("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    keys = [k for k in (evals[0] if evals else {}) if k.startswith("val/") and k.count("/") == 2
            and not k.endswith(("/n", "/loss"))]
    shown = [f"val/{metric}"] if f"val/{metric}" in keys else []
    shown += [k for k in keys if k.endswith(("balanced_accuracy", "/mae")) and k not in shown][:4]
    for i, k in enumerate(shown):
        values = [h.get(k, math.nan) for h in evals]
        ax.plot([h["step"] for h in evals], values, "o-", ms=3, color=f"C{i}", label=k[4:],
                lw=2.0 if i == 0 else 1.0)
    ax.set_xlabel("step")
    ax.set_title(f"validation (checkpoints ranked by {metric})" if shown else "no validation split",
                 fontsize=9)
    if shown:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def metrics_table(title: str, results: Mapping[str, Mapping[str, float]], registry: Any):
    """A rich table: one row per task, one column per metric, for each named result set."""
    from sd_core.runs.console import table

    metric_names: list[str] = []
    tasks: list[str] = []
    for res in results.values():
        for k in res:
            if k.count("/") != 1:
                continue
            task, name = k.split("/")
            if task not in tasks:
                tasks.append(task)
            if name not in metric_names and name not in ("n",):
                metric_names.append(name)
    tab = table(title, ["split", "task", "n", *metric_names])
    for split, res in results.items():
        for task in tasks:
            if f"{task}/n" not in res:
                continue
            cells = []
            for name in metric_names:
                v = res.get(f"{task}/{name}")
                cells.append("-" if v is None or v != v else f"{v:.3f}")
            tab.add_row(split, task, str(res.get(f"{task}/n", "")), *cells)
    return tab


class TrainProgress:
    """A progress bar of the steps with the loss and the last evaluation (plain lines every few
    seconds when output is piped; see :mod:`sd_core.runs.progress`)."""

    def __init__(self, console) -> None:
        self.console = console
        self.bar = None
        self.last_eval = ""

    def start(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        from sd_core.runs.progress import make_progress

        self.bar = make_progress(self.console, TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(), label="train",
                                 transient=False)
        self.bar.start()
        self.task = self.bar.add_task("", total=total, completed=done, info="")
        self.loss = ""

    def advance(self, step: int, loss: float) -> None:
        self.loss = f"loss {loss:.3f}"
        self.bar.update(self.task, completed=step, info=f"{self.loss} {self.last_eval}")

    def evaluated(self, step: int, metrics: Mapping[str, float], key: str) -> None:
        from sd_core.runs.progress import verbosity

        value = metrics.get(key, math.nan)
        self.last_eval = f"· val {key} {value:.3f}"
        self.bar.update(self.task, info=f"{self.loss} {self.last_eval}")  # never a stale figure
        if verbosity() > 0:
            shown = " ".join(f"{k} {v:.3f}" for k, v in metrics.items() if not k.endswith("/n"))
            self.console.print(f"step {step}: val {shown}", soft_wrap=True, highlight=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
