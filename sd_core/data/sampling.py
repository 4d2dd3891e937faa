"""Balanced sampling and the order of an epoch.

Balanced sampling weights every (data set × class) group by the inverse of its size, relative
to the largest group, capped at ``max_weight``: a group of n rows in a set whose largest group
has n_max rows gets weight min(n_max / n, max_weight) per row, so it is drawn in proportion to
n · min(n_max / n, max_weight). Without the cap every group is drawn equally often; the cap
keeps a handful of rare windows from being repeated hundreds of times. Rows without a label for
the balancing task form their own group per data set.

The order of epoch e depends only on (seed, e), so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Hashable, Mapping, Sequence

import torch


def group_weights(groups: Sequence[Hashable], max_weight: float) -> dict[Hashable, float]:
    """Per-row weight of each group (see the module text)."""
    counts = Counter(groups)
    largest = max(counts.values())
    return {g: min(largest / n, float(max_weight)) for g, n in counts.items()}


def dataset_class_groups(rows: Sequence[Mapping[str, Any]], task: Any) -> list[tuple[str, str]]:
    """The (data set, class) group of each row for balancing on ``task`` ("" = no label)."""
    return [(r.get("dataset", ""), task.raw_value(r)) for r in rows]


def balanced_weights(groups: Sequence[Hashable], max_weight: float) -> torch.Tensor:
    per_group = group_weights(groups, max_weight)
    return torch.tensor([per_group[g] for g in groups], dtype=torch.float64)


def expected_shares(groups: Sequence[Hashable], max_weight: float) -> dict[Hashable, float]:
    """The fraction of draws each group gets under balanced sampling."""
    counts = Counter(groups)
    per_group = group_weights(groups, max_weight)
    mass = {g: counts[g] * w for g, w in per_group.items()}
    total = sum(mass.values())
    return {g: m / total for g, m in mass.items()}


def epoch_order(n: int, epoch: int, seed: int, weights: torch.Tensor | None = None,
                shuffle: bool = True) -> list[int]:
    """Row indices of one epoch: a permutation, or n weighted draws with replacement."""
    gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    if weights is not None:
        return torch.multinomial(weights, n, replacement=True, generator=gen).tolist()
    if not shuffle:
        return list(range(n))
    return torch.randperm(n, generator=gen).tolist()


def epoch_batches(order: Sequence[int], batch_size: int, world: int = 1, rank: int = 0,
                  drop_last: bool = False) -> list[list[int]]:
    """This process's batches of an epoch.

    Batches are cut from ``order``; with several processes, batch i goes to process i % world,
    and the epoch is cut to a multiple of ``world`` batches so every process takes the same
    number of steps.
    """
    batches = [list(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size and len(batches) > 1:
        batches.pop()
    if len(batches) < world:  # too few rows for one batch per process: repeat
        batches = (batches * world)[:world]
    usable = len(batches) - len(batches) % world
    return batches[:usable][rank::world]
