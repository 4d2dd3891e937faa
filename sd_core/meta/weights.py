"""Weights of a meta data set: groups, the weighting rule, copies per row and the shares.

A row's **group** is its data set and its class: the values of the labels balanced over (e.g.
``("parkinsons", "PD")``; several labels join their values with ``_``; a row without a value
has the class ``""``, a group of its own per data set).

The rule (``weighting = "inverse"``) is the original project's MetaSampler rule as its weighted
export applied it: inverse frequency of the group, scaled so that the most common group weighs
1 (the export made copies from weights divided by the smallest), capped at
``max_sampling_weight``. A group of n rows in a split whose largest group has n_max rows gets
``min(n_max / n, max_sampling_weight)`` per row. That is exactly the rule of ``sd train``'s and
``sd diffusion train``'s balanced sampling (:func:`sd_core.data.sampling.group_weights`), so a
meta set made with it and read unbalanced is drawn like the components read balanced.
``weighting = "none"`` gives every row weight 1 (a plain union).

**Copies**: a row of weight w gets about ``w · factor`` copies (``factor`` from the config, or
chosen so that the split has ``size`` rows): ``floor`` of it, and the fractions spread evenly
over the group's rows in order (the original's ``assign_copies``), so a group of n rows gets
``floor(n · w · factor)`` or one more. A factor below 1 thins a group the same way.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Hashable, Mapping, Sequence

RULES = ("inverse", "none")
Group = tuple[str, str]


def group_of(row: Mapping[str, Any], labels: Sequence[str]) -> Group:
    values = [str(row.get(label, "") or "") for label in labels]
    return (str(row.get("dataset", "")), "" if any(v == "" for v in values) else "_".join(values))


def group_label(group: Group) -> str:
    return f"{group[0]} × {group[1] or '(none)'}"


def rule_weights(groups: Sequence[Hashable], rule: str, max_weight: float) -> dict[Hashable, float]:
    """Per-row weight of each group under ``rule`` (see the module text)."""
    if rule == "none" or not groups:
        return {g: 1.0 for g in set(groups)}
    from sd_core.data.sampling import group_weights  # sd train's rule: one definition

    return group_weights(groups, max_weight)


def copies_for(groups: Sequence[Hashable], per_group: Mapping[Hashable, float], factor: float) -> list[int]:
    """Copies of each row, in row order (see the module text)."""
    remainder: dict[Hashable, float] = {}
    out = []
    for g in groups:
        want = per_group[g] * factor
        base = math.floor(want + 1e-9)
        extra = 0
        frac = want - base
        if frac > 1e-9:
            acc = remainder.get(g, 0.0) + frac
            if acc + 1e-9 >= 1.0:
                extra, acc = 1, acc - 1.0
            remainder[g] = acc
        out.append(base + extra)
    return out


def factor_for(groups: Sequence[Hashable], per_group: Mapping[Hashable, float], size: int,
               factor: float) -> float:
    """``factor``, or the one that makes about ``size`` rows when ``size`` > 0."""
    if size <= 0:
        return factor
    mass = sum(per_group[g] for g in groups)
    return size / mass if mass else factor


def shares(counts: Mapping[Hashable, float]) -> dict[Hashable, float]:
    total = sum(counts.values())
    return {g: (n / total if total else 0.0) for g, n in counts.items()}


def diagnostics(groups: Sequence[Hashable], per_group: Mapping[Hashable, float],
                copies: Sequence[int]) -> list[dict[str, Any]]:
    """Per group: rows, weight, copies, and the shares before weighting, after (the copies
    made) and expected (a sampler drawing rows with these weights)."""
    before = Counter(groups)
    after: Counter = Counter()
    for g, c in zip(groups, copies):
        after[g] += c
    expected = shares({g: n * per_group[g] for g, n in before.items()})
    share_before, share_after = shares(before), shares(after)
    return [{"dataset": g[0], "class": g[1], "rows": before[g], "weight": per_group[g],
             "copies": after[g], "share_before": share_before[g], "share_after": share_after[g],
             "share_expected": expected[g]}
            for g in sorted(before)]
