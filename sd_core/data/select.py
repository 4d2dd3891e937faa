"""Which processed folders an experiment reads, and their rows per split.

A data set named in an experiment is read from ``[data] paths.<name>`` of the experiment file
when given, else from its output folder in the project file ``sd.toml`` (``sd config show``).
Folders in ``extra_train`` (e.g. written by ``sd generate``) add their training rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from sd_core.config.schema import did_you_mean
from sd_core.data.sources import Source, read_metadata
from sd_core.errors import ConfigError, DatasetError


def sources_for(datasets: Sequence[str], overrides: Mapping[str, Path], project: Any,
                registry: Any, where: str = "[data] datasets") -> list[Source]:
    """One source per data set; names are checked against the installed plugins."""
    if not datasets:
        raise ConfigError(f"{where}: name at least one data set")
    for name in datasets:
        if name not in registry.datasets:
            raise ConfigError(f"{where}: unknown data set {name!r}; installed: "
                              + (", ".join(sorted(registry.datasets)) or "none")
                              + did_you_mean(name, sorted(registry.datasets)))
    unknown = sorted(set(overrides) - set(datasets))
    if unknown:
        raise ConfigError(f"[data] paths names data set(s) {', '.join(unknown)} that are not in "
                          f"{where} ({', '.join(datasets)})")
    return [Source(Path(overrides[d]) if d in overrides else project.output_dir(d), d) for d in datasets]


def read_rows(sources: Sequence[Source], split: str, allowed: Sequence[str] = ()) -> list[dict]:
    """Rows of ``split`` from every source, in source order.

    ``allowed``: data sets a source may hold (for folders such as generated data whose data set
    is read from their rows); empty = the source's own.
    """
    rows: list[dict] = []
    for src in sources:
        part = read_metadata(src, split)
        if allowed:
            other = sorted({r.get("dataset", "") for r in part} - set(allowed))
            if other:
                raise DatasetError(f"{src.root}: holds rows of data set(s) {', '.join(other)}, "
                                   f"not among {', '.join(allowed)}")
        rows += part
    return rows
