"""Channel names: cleaning, old/new 10–20 aliases, and selection by name."""

from __future__ import annotations

import re
from typing import Sequence

from sd_core.errors import DatasetError

#: Old (1958) and new (MCN) names of the same temporal/parietal electrodes.
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

_PREFIX = re.compile(r"^(EEG|EOG|ECG|EMG)[\s_:-]+", re.IGNORECASE)
_SUFFIX = re.compile(r"[-_](REF|LE|AR|AVG)$", re.IGNORECASE)


def clean_channel_name(name: str) -> str:
    """``"EEG Fp1-REF"`` → ``"Fp1"``; bipolar names such as ``"FP1-F7"`` are kept."""
    name = _PREFIX.sub("", name.strip())
    return _SUFFIX.sub("", name).strip()


def canonical(name: str) -> str:
    """A case-insensitive key that treats old and new 10–20 names as one electrode.

    Works on single electrodes (``T3`` == ``t7``) and bipolar derivations (``T3-T5`` == ``T7-P7``).
    """
    parts = []
    for part in name.split("-"):
        up = part.strip().upper()
        key = next((k for k in ALIASES if k.upper() == up), None)
        parts.append(ALIASES[key].upper() if key else up)
    return "-".join(parts)


def match_channels(
    wanted: Sequence[str], available: Sequence[str], where: str = "recording"
) -> list[int]:
    """Indices into ``available`` of each ``wanted`` channel, in ``wanted``'s order.

    Names are compared by :func:`canonical`; the first of duplicate names wins. A missing
    channel raises :class:`DatasetError` naming all missing channels.
    """
    index: dict[str, int] = {}
    for i, name in enumerate(available):
        index.setdefault(canonical(name), i)
    missing = [w for w in wanted if canonical(w) not in index]
    if missing:
        raise DatasetError(
            f"{where} lacks channel(s) {', '.join(missing)} "
            f"(has {len(available)}: {', '.join(available[:25])}{' ...' if len(available) > 25 else ''})"
        )
    return [index[canonical(w)] for w in wanted]
