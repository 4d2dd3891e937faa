"""A rich progress bar over the steps of an evaluation (silent without a console), and the
seconds each step took."""

from __future__ import annotations

import time
from typing import Any


class Steps:
    def __init__(self, console: Any = None) -> None:
        self.console = console
        self.bar = None
        self.task = None
        self._total = 0
        self.times: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def __enter__(self) -> "Steps":
        if self.console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

            from sd_core.runs.progress import make_progress

            self.bar = make_progress(self.console, TextColumn("[bold]evaluate[/] {task.description}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), label="evaluate")
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.end()

    def _close(self) -> None:
        if self._current is not None:
            name, t0 = self._current
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
            self._current = None

    def begin(self, description: str, total: int) -> None:
        self._close()
        self._current = (description, time.perf_counter())
        if self.bar is None:
            return
        if self.task is not None:
            self.bar.update(self.task, completed=self._total)
        self.task = self.bar.add_task(description, total=total)
        self._total = total

    def advance(self, n: int = 1) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, n)

    def note(self, text: str) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=text)

    def end(self) -> None:
        self._close()
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
