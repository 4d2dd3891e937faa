"""Progress for every long command: rich bars on a terminal, plain lines when output is piped.

rich draws nothing until the end when its console is not a terminal, so a piped ``sd train``
looked stuck. :func:`make_progress` gives rich's ``Progress`` on a terminal and
:class:`PlainProgress`, with the same methods, otherwise: one line per task every
``SD_PROGRESS_SECONDS`` seconds (default 5) and a last line with the final figures when the task
ends. ``sd -q`` turns progress off; ``sd -v`` adds a line per finished step where commands have
one (a subject, an evaluation).
"""

from __future__ import annotations

import os
import time
from typing import Any

#: set by the root command's -q/-v options: -1 quiet, 0 normal, 1 verbose
VERBOSITY = {"level": 0}


def verbosity() -> int:
    return VERBOSITY["level"]


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("SD_PROGRESS_SECONDS", "5")))
    except ValueError:
        return 5.0


def make_progress(console, *columns, label: str = "", **kwargs):
    """rich ``Progress(*columns)`` on a terminal; :class:`PlainProgress` for piped output;
    a disabled one with ``sd -q``."""
    from rich.progress import Progress

    if verbosity() < 0 or console is None:
        return Progress(*columns, console=console, disable=True)
    if console.is_terminal:
        return Progress(*columns, console=console, **kwargs)
    return PlainProgress(console, label)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Task:
    def __init__(self, description: str, total: float | None, completed: float, fields: dict) -> None:
        self.description, self.total, self.completed, self.fields = description, total, completed, fields
        self.start = time.monotonic()
        self.start_completed = completed
        self.printed_at = 0.0
        self.printed: tuple | None = None


class PlainProgress:
    """rich ``Progress``'s methods, printing plain lines (see the module docstring)."""

    def __init__(self, console, label: str = "") -> None:
        self.console = console
        self.label = label
        self.tasks: dict[int, _Task] = {}
        self._next = 0
        self.interval = _interval()

    # -- the part of rich's interface sd uses ----------------------------------------------------

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for tid in list(self.tasks):
            self._finish(tid)

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0, **fields) -> int:
        tid = self._next
        self._next += 1
        self.tasks[tid] = _Task(description, total, completed, fields)
        return tid

    def update(self, task_id: int, *, completed: float | None = None, advance: float | None = None,
               description: str | None = None, total: float | None = None, **fields) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            return
        if completed is not None:
            task.completed = completed
        if advance:
            task.completed += advance
        if description is not None:
            task.description = description
        if total is not None:
            task.total = total
        task.fields.update(fields)
        now = time.monotonic()
        if now - task.printed_at >= self.interval:
            self._print(task, now)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: int) -> None:
        self.tasks.pop(task_id, None)  # a finished sub-task: its parent reports the progress

    # -- lines -----------------------------------------------------------------------------------

    def _finish(self, task_id: int) -> None:
        task = self.tasks.pop(task_id, None)
        if task is not None:
            self._print(task, time.monotonic(), final=True)

    def _line(self, task: _Task, now: float) -> str:
        from rich.text import Text

        desc = Text.from_markup(task.description).plain
        parts = [f"{self.label} {desc}".strip()]
        if task.total:
            done = int(task.completed)
            parts.append(f"{done}/{int(task.total)} ({100 * task.completed / task.total:.0f} %)")
        info = " ".join(str(v) for v in task.fields.values() if str(v))
        if info:
            parts.append(Text.from_markup(info).plain)
        elapsed = now - task.start
        parts.append(f"[{_clock(elapsed)} elapsed")
        rate = (task.completed - task.start_completed) / elapsed if elapsed > 0 else 0
        if task.total and rate > 0 and task.completed < task.total:
            parts[-1] += f", ~{_clock((task.total - task.completed) / rate)} left"
        parts[-1] += "]"
        return " ".join(parts)

    def _print(self, task: _Task, now: float, final: bool = False) -> None:
        state = (task.description, task.completed, tuple(map(str, task.fields.values())))
        if final and state == task.printed:
            return  # the last line said it already
        task.printed_at, task.printed = now, state
        self.console.print(self._line(task, now), soft_wrap=True, highlight=False, markup=False)


def plain_or_rich_status(console, text: str) -> Any:
    """``console.status(text)`` on a terminal; a printed line otherwise (or nothing with -q)."""
    from contextlib import nullcontext

    if console.is_terminal and verbosity() >= 0:
        return console.status(text)
    if verbosity() >= 0:
        console.print(text, soft_wrap=True, highlight=False, markup=False)
    return nullcontext()
