"""How many times, and how long, a timed phase runs: ``warmup`` iterations first, which
are reported apart and never enter the statistics, then ``iterations`` measured ones; or,
with ``until_stable``, measured iterations until the last ``window`` agree within that
coefficient of variation (as pbench and warp's autoterm do), at most ``max_iterations``.
With a ``duration`` each client of an iteration moves files one after another until
the common start + duration (the file under way is finished).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Optional

from parbench.worker.protocol import DURATION_FORMAT, UnitError, parse_duration

MAX_ITERATIONS = 1000
MAX_WARMUP = 100
MAX_DURATION = 7 * 24 * 3600.0


class IterationPlanError(ValueError):
    """Iteration settings that do not make sense; the message names the option."""


def seconds_of(value: object) -> float:
    """A duration from a number of seconds or a time like ``"90s"``, ``"1m30s"``, ``"2h"``,
    ``"500ms"`` (``worker.protocol.units``; ValueError otherwise, or when not positive)."""
    try:
        seconds = parse_duration(value)
    except UnitError:
        raise ValueError(f"expected {DURATION_FORMAT}; got {value!r}") from None
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError(f"expected a duration above 0 and at most 7 days; got {value!r}")
    return seconds


@dataclass(frozen=True)
class IterationPlan:
    """How many iterations of a timed phase run, and how long each moves files."""

    iterations: int = 1
    warmup: int = 0
    until_stable: Optional[float] = None  # coefficient of variation, e.g. 0.05
    window: int = 3
    max_iterations: int = 10
    duration: Optional[float] = None  # seconds; None: one file per client

    def check(self) -> IterationPlan:
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise IterationPlanError(
                f"iterations: expected 1..{MAX_ITERATIONS}, got {self.iterations}"
            )
        if not 0 <= self.warmup <= MAX_WARMUP:
            raise IterationPlanError(f"warmup: expected 0..{MAX_WARMUP}, got {self.warmup}")
        if self.until_stable is not None:
            if not 0 < self.until_stable < 1:
                raise IterationPlanError(
                    "until_stable: expected a coefficient of variation between 0 and 1"
                    f" (0.05 is 5 %), got {self.until_stable}"
                )
            if not 2 <= self.window <= self.max_iterations:
                raise IterationPlanError(
                    f"stable_window: expected 2..max_iterations ({self.max_iterations}),"
                    f" got {self.window}"
                )
            if not 2 <= self.max_iterations <= MAX_ITERATIONS:
                raise IterationPlanError(
                    f"max_iterations: expected 2..{MAX_ITERATIONS}, got {self.max_iterations}"
                )
        return self

    def overridden(
        self,
        iterations: Optional[int],
        warmup: Optional[int],
        duration: Optional[float] = None,
        until_stable: Optional[float] = None,
    ) -> IterationPlan:
        """These rounds with the command line's ``--iterations``/``--warmup``/
        ``--duration``/``--until-stable`` where given (a fixed ``--iterations`` replaces
        ``until_stable``)."""
        if iterations is not None and until_stable is not None:
            raise IterationPlanError("--iterations, --until-stable: give one of them")
        changed = self
        if until_stable is not None:
            changed = replace(changed, until_stable=until_stable)
        if iterations is not None:
            changed = replace(changed, iterations=iterations, until_stable=None)
        if warmup is not None:
            changed = replace(changed, warmup=warmup)
        if duration is not None:
            changed = replace(changed, duration=duration)
        return changed.check()

    def fits(self, budget: float) -> IterationPlan:
        """These rounds, when their duration leaves room in a phase's ``budget`` (seconds)
        for set-up and the last file; IterationPlanError otherwise."""
        if self.duration is not None and self.duration > budget / 2:
            raise IterationPlanError(
                f"duration {self.duration:g} s is more than half of the {budget:g} s a phase"
                " may take (90 % of defaults.phase_timeout): raise phase_timeout"
            )
        return self

    @property
    def most(self) -> int:
        """The most iterations, warm-up included."""
        measured = self.max_iterations if self.until_stable is not None else self.iterations
        return self.warmup + measured

    def next_is_warmup(self, done: int) -> bool:
        return done < self.warmup

    def verdict(self, measured: Sequence[float]) -> Optional[str]:
        """None to run another iteration, else why to stop, given the measured
        iterations' throughputs so far."""
        if self.until_stable is None:
            return "done" if len(measured) >= self.iterations else None
        if len(measured) >= self.window:
            cv = cv_of(measured[-self.window :])
            if cv <= self.until_stable:
                return (
                    f"stable: the last {self.window} iterations agree within"
                    f" {cv * 100:.1f} % (until_stable {self.until_stable * 100:g} %)"
                )
        if len(measured) >= self.max_iterations:
            cv = cv_of(measured[-self.window :])
            return (
                f"not stable after {len(measured)} iterations (max_iterations): the last"
                f" {self.window} vary by {cv * 100:.1f} %, more than until_stable"
                f" {self.until_stable * 100:g} %"
            )
        return None

    def to_dict(self) -> dict:
        return asdict(self)


def cv_of(values: Sequence[float]) -> float:
    """Coefficient of variation of ``values`` (infinite for fewer than two or a 0 mean)."""
    if len(values) < 2 or not statistics.fmean(values):
        return math.inf
    return statistics.stdev(values) / statistics.fmean(values)
