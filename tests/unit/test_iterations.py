"""Iterations: when a timed phase stops repeating, and the statistics of its samples."""

from __future__ import annotations

import statistics

import pytest

from parbench.controller.analysis.samples import Samples
from parbench.controller.run.iterations import IterationPlan, IterationPlanError, cv_of


def test_fixed_iterations_after_warmup() -> None:
    rounds = IterationPlan(iterations=3, warmup=2).check()
    assert rounds.most == 5
    assert [rounds.next_is_warmup(i) for i in range(5)] == [True, True, False, False, False]
    assert rounds.verdict([1.0, 2.0]) is None
    assert rounds.verdict([1.0, 2.0, 3.0]) == "done"


def test_until_stable_stops_when_the_last_window_agrees() -> None:
    rounds = IterationPlan(until_stable=0.05, window=3, max_iterations=8).check()
    assert rounds.most == 8
    assert rounds.verdict([600.0, 900.0]) is None  # fewer than the window
    assert rounds.verdict([600.0, 900.0, 700.0]) is None  # cv 21 %
    said = rounds.verdict([600.0, 900.0, 700.0, 980.0, 1000.0, 1010.0])
    assert said is not None and said.startswith("stable: the last 3 iterations agree within 1.5 %")


def test_until_stable_says_plainly_when_it_never_was() -> None:
    rounds = IterationPlan(until_stable=0.01, window=2, max_iterations=4).check()
    said = rounds.verdict([100.0, 200.0, 100.0, 200.0])
    assert said is not None and said.startswith("not stable after 4 iterations (max_iterations)")
    assert "47.1 %" in said


def test_the_command_line_overrides() -> None:
    base = IterationPlan(until_stable=0.05)
    assert base.overridden(4, None) == IterationPlan(iterations=4)
    assert base.overridden(None, 2) == IterationPlan(until_stable=0.05, warmup=2)
    with pytest.raises(IterationPlanError, match="iterations: expected 1..1000, got 0"):
        base.overridden(0, None)
    with pytest.raises(IterationPlanError, match="warmup: expected 0..100, got -1"):
        base.overridden(None, -1)


def test_samples_against_the_textbook() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    s = Samples.of(values)
    assert s.n == 5 and s.mean == 11.0 and s.median == 11.0 and (s.min, s.max) == (9.0, 13.0)
    assert s.stdev == pytest.approx(statistics.stdev(values))
    assert s.cv == pytest.approx(s.stdev / 11.0)
    # t(0.975, 4) = 2.776: mean ± 2.776 * 1.581 / sqrt(5)
    assert s.ci_low == pytest.approx(11.0 - 1.963, abs=1e-3)
    assert s.ci_high == pytest.approx(11.0 + 1.963, abs=1e-3)
    one = Samples.of([5.0])
    assert (one.stdev, one.cv, one.ci_low, one.ci_high) == (0.0, 0.0, 5.0, 5.0)
    assert Samples.of([]).n == 0
    assert cv_of([1.0]) == float("inf") and cv_of([2.0, 2.0]) == 0.0
