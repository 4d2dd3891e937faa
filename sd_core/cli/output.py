"""Shared rich consoles and table helpers."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def console():
    from rich.console import Console

    return Console(highlight=False)


@lru_cache(maxsize=None)
def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def table(title: str | None, columns: list[str]):
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    return t
