"""Channel names: cleaning, old/new 10–20 aliases, and selection by name."""

from __future__ import annotations

import re
from collections.abc import Sequence

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


ALL = "*"  # every channel of the file not named elsewhere in the list, in file order
EXCLUDE = "!"  # "!NAME": leave NAME out of ALL


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def match_channels(
    wanted: Sequence[str], available: Sequence[str], where: str = "recording"
) -> list[int]:
    """Indices into ``available`` of each ``wanted`` channel, in ``wanted``'s order.

    Names are compared by :func:`canonical`.  A name listed n times picks the first n channels
    of that name, in file order (CHB-MIT has two different ``T8-P8`` derivations).  ``"*"``
    stands for every channel not picked by name and not excluded with ``"!NAME"``, in file
    order (EEGMAT's list is ``["*", "!EKG"]``).  A missing channel raises
    :class:`DatasetError` naming all missing channels.
    """
    index: dict[str, list[int]] = {}
    for i, name in enumerate(available):
        index.setdefault(canonical(name), []).append(i)
    excluded = {canonical(w[len(EXCLUDE):]) for w in wanted if w.startswith(EXCLUDE)}
    named = [w for w in wanted if w != ALL and not w.startswith(EXCLUDE)]
    used: dict[str, int] = {}
    picks: dict[int, int] = {}  # position in wanted -> index
    missing = []
    for pos, w in enumerate(wanted):
        if w == ALL or w.startswith(EXCLUDE):
            continue
        key = canonical(w)
        n = used.get(key, 0)
        used[key] = n + 1
        found = index.get(key, [])
        if n < len(found):
            picks[pos] = found[n]
        else:
            missing.append(w if n == 0 else f"{w} ({_ordinal(n + 1)} of that name)")
    if missing:
        raise DatasetError(
            f"{where} lacks channel(s) {', '.join(missing)} "
            f"(has {len(available)}: {', '.join(available[:25])}{' ...' if len(available) > 25 else ''})"
        )
    out: list[int] = []
    taken = set(picks.values())
    for pos, w in enumerate(wanted):
        if pos in picks:
            out.append(picks[pos])
        elif w == ALL:
            out += [i for i, name in enumerate(available)
                    if i not in taken and canonical(name) not in excluded and i not in out]
    assert len(named) == len(picks)
    return out
