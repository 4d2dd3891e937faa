"""The rich consoles, tables and JSON output that commands print their results with."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


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


def print_json(data) -> None:
    """``--json``: the command's results as one JSON document on stdout (progress goes to stderr)."""
    import json
    import math

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    import sys

    sys.stdout.write(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n")


JSON_OPTION = dict(is_flag=True, help="Print the results as JSON on stdout (progress goes to stderr).")
