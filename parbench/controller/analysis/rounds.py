"""Rounds in shuffled order, medians and their spread: what a sweep (controller/sweep.py)
and the bench's interleaved comparisons (bench/__main__.py) share.

Each round runs every variant once, in an order of its own drawn from a seeded generator
(the seed is kept, so the order can be repeated exactly): a warming proxy or a drifting
machine then favours no variant. A variant's figure is the **median** of its rounds; its
**spread** is their min..max, which holds the true median with probability
``1 - 2 ** (1 - n)`` for ``n`` independent rounds (75 % at 3, 94 % at 5: the
distribution-free confidence interval of a median from its extreme order statistics).
Two variants whose ranges overlap are not told apart. A ratio is the ratio of the
medians, with the min..max of the per-round ratios (rounds paired by their number).
"""

from __future__ import annotations

import random
import secrets
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, TypeVar

T = TypeVar("T")


def new_seed() -> int:
    """A seed for :func:`orders`: small enough to type again."""
    return secrets.randbelow(1_000_000)


def orders(items: Sequence[T], rounds: int, seed: int) -> list[list[T]]:
    """``rounds`` orders of ``items``, each a new shuffle, the same for the same seed."""
    draw = random.Random(seed)
    found = []
    for _ in range(rounds):
        order = list(items)
        draw.shuffle(order)
        found.append(order)
    return found


def ci_level(n: int) -> float:
    """The confidence that min..max of ``n`` rounds holds their true median."""
    return 1 - 2.0 ** (1 - n) if n >= 2 else 0.0


@dataclass(frozen=True)
class Spread:
    """The middle figure of some rounds (a median, or a ratio of medians), and the
    min..max of the rounds' own figures."""

    value: float
    low: float
    high: float
    n: int

    @property
    def ci_level(self) -> float:
        return ci_level(self.n)

    def overlaps(self, other: Spread) -> bool:
        """Whether the two ranges meet: the two are not told apart."""
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "ci_level": round(self.ci_level, 4),
        }


def spread(values: Iterable[float]) -> Spread:
    """The median of ``values`` with their min..max; ValueError when there are none."""
    found = list(values)
    if not found:
        raise ValueError("no rounds to take a median of")
    return Spread(statistics.median(found), min(found), max(found), len(found))


def ratio(a: Mapping[int, float], b: Mapping[int, float]) -> Spread | None:
    """``a`` over ``b`` (round -> figure): the ratio of their medians, with the min..max
    of the ratios of the rounds both have; None when no round pairs up or one is zero."""
    paired = [a[k] / b[k] for k in a if k in b and b[k]]
    if not paired or not a or not b:
        return None
    below = statistics.median(b.values())
    if not below:
        return None
    return Spread(statistics.median(a.values()) / below, min(paired), max(paired), len(paired))
