"""Statistics of repeated measurements: one number per iteration (its aggregate
throughput), summarised as pyperf and pbench do: mean, sample standard deviation,
coefficient of variation, min/median/max and a 95 % confidence interval of the mean
(Student's t, from scipy: with 3 to 10 iterations the normal approximation would claim
half again too much certainty)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Samples:
    """Summary of ``n`` values; spread figures are 0.0 for fewer than two, the interval
    then the mean itself."""

    n: int
    values: tuple[float, ...]
    mean: float
    stdev: float
    cv: float  # stdev / mean; 0.0 when the mean is 0
    min: float
    median: float
    max: float
    ci_low: float  # 95 % confidence interval of the mean
    ci_high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Samples:
        values = tuple(float(v) for v in values)
        n = len(values)
        if n == 0:
            return cls(0, (), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        mean = statistics.fmean(values)
        stdev = statistics.stdev(values) if n > 1 else 0.0
        half = 0.0
        if n > 1:
            from scipy import stats as scipy_stats  # here: importing it takes a while

            half = float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)) * stdev / math.sqrt(n)
        return cls(
            n=n,
            values=values,
            mean=mean,
            stdev=stdev,
            cv=stdev / mean if mean else 0.0,
            min=min(values),
            median=statistics.median(values),
            max=max(values),
            ci_low=mean - half,
            ci_high=mean + half,
        )

    def to_dict(self) -> dict:
        return asdict(self)
