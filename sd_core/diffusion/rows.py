"""Metadata rows and captions for labels (generated images, sample grids, caption conditioning)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sd_core.data.labels import LabelSpec


def label_row(spec: LabelSpec, item: Mapping[str, Any]) -> dict[str, str]:
    """Metadata columns of a plan item: each condition's value in the columns it is read from.

    A task read from several columns (values joined with ``_``) is split back into them.
    """
    dataset = item["dataset"]
    row: dict[str, str] = {"dataset": dataset}
    for t in spec.conditions:
        value = item["labels"].get(t.name, "")
        if value == "":
            continue
        cols = list(t.columns.get(dataset, (t.name,)))
        parts = [value] if len(cols) == 1 else value.split("_", len(cols) - 1)
        if len(parts) != len(cols):
            parts = [value] + [""] * (len(cols) - 1)
        row.update(zip(cols, parts))
    return row


def caption(row: Mapping[str, Any], registry: Any = None) -> str:
    """The data set plugin's caption of a row (see :func:`sd_core.plugins.captions.caption_of`)."""
    from sd_core.plugins.captions import caption_of, describe_subject

    if registry is None:
        return describe_subject(row)
    return caption_of(row, registry)
