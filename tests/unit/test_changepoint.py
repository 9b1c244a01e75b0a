"""e-divisive change points on synthetic series: a known step, none, noise only."""

from __future__ import annotations

import random

import numpy as np
import pytest

from parbench.controller.analysis.changepoint import best_split, change_points


def noisy(level: float, n: int, rng: random.Random, spread: float = 0.02) -> list[float]:
    return [level * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_a_known_step_is_found_where_it_is() -> None:
    rng = random.Random(1)
    series = noisy(700, 8, rng) + noisy(560, 5, rng)
    (point,) = change_points(series)
    assert point.index == 8 and point.p_value < 0.05
    assert point.change == pytest.approx(-0.2, abs=0.02)


def test_two_steps_both_found() -> None:
    rng = random.Random(2)
    series = noisy(500, 6, rng) + noisy(650, 6, rng) + noisy(480, 6, rng)
    assert [p.index for p in change_points(series)] == [6, 12]


def test_noise_alone_rarely_has_a_change_point_worth_naming() -> None:
    """200 series of 15 runs with +-5 % noise: a change point of 5 % or more (what fab
    check would call a regression) in at most 2 % of them."""
    named = 0
    for seed in range(200):
        points = change_points(noisy(700, 15, random.Random(seed), spread=0.05))
        named += any(abs(p.change) >= 0.05 for p in points)
    assert named <= 4


def test_a_step_needs_three_runs_at_the_new_level() -> None:
    rng = random.Random(7)
    before = noisy(700, 6, rng, spread=0.03)
    assert change_points(before + noisy(630, 2, rng, spread=0.03)) == []
    assert [p.index for p in change_points(before + noisy(630, 3, rng, spread=0.03))] == [6]


def test_short_and_flat_series() -> None:
    assert change_points([1.0, 2.0, 3.0]) == []
    assert change_points([5.0] * 10) == []
    assert best_split(np.array([1.0, 1.0, 1.0, 9.0, 9.0, 9.0]))[0] == 3
    assert best_split(np.array([1.0, 9.0]))[0] is None


def test_the_verdict_is_reproducible() -> None:
    rng = random.Random(3)
    series = noisy(100, 5, rng) + noisy(90, 5, rng)
    assert change_points(series) == change_points(series)
