"""Meta data sets (DESIGN, "Meta data sets"): weighting, building, dataset card.

- ``config``: the ``[meta]`` experiment file of ``sd meta build``.
- ``components``: the processed or generated folders a meta set draws from.
- ``weights``: data set × class groups, the weighting rule, copies per row, shares.
- ``build``: plan and write the folder (processed layout, ownership manifest), rebuild.
- ``plot``: ``weights.png`` and the terminal table; ``card``: ``README.md`` (Hugging Face card).
- :func:`double_weighting`: what ``sd train`` / ``sd diffusion train`` say when asked to balance
  a set that is weighted already.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def double_weighting(roots: Iterable[Path], split: str) -> str | None:
    """A warning when a folder among ``roots`` is a meta set whose ``split`` is weighted already
    (balanced sampling on top would apply the weights twice); None otherwise."""
    from sd_core.meta.components import read_meta_json

    seen = []
    for root in dict.fromkeys(Path(r) for r in roots):
        info = read_meta_json(root)
        if info and info.get("weighted") and split in info.get("config", {}).get("weighted_splits", []):
            seen.append(str(root))
    if not seen:
        return None
    return (f"{', '.join(seen)} is a meta data set weighted by sd meta build (its {split} split "
            "holds copies per weight); balanced sampling is not applied on top of it (that would "
            "weigh twice): set balanced = false in [data] to silence this")
