"""Hooks of sd-backbones. The networks themselves arrive with multi-task training."""

from __future__ import annotations

from sd_core import hookimpl


@hookimpl
def sd_backbones():
    return []
