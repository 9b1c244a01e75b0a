"""Mergeable latency histograms with log-linear buckets (HdrHistogram's layout).

Values are whole microseconds. Below ``2**BITS`` every value has a bucket of its own;
above, each power of two is cut into ``2**(BITS-1)`` equal buckets, so a bucket is never
wider than ``2**-(BITS-1)`` of its lower bound. A percentile is reported as the middle of
its bucket (clamped to the exact min and max), hence within ``2**-BITS`` (0.4 %) of the
exact nearest-rank percentile, or 1 us below ``2**BITS`` us. Values above ``HIGHEST``
(about 12.7 days) count in the last bucket; ``max`` stays exact.

The buckets in use are kept sparse: at most ``BUCKETS`` whatever the number of values,
so a histogram's size is bounded by the range of its values, not by the run's length.
Merging adds counts; it is associative and commutative, so per-client histograms merge
into per-node and per-phase ones in any order. Stdlib only, Python 3.9+ (part of the
records the worker sends the controller).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Dict, Iterable, List, Optional, Tuple

#: significant bits of a bucket's lower bound
BITS = 8
_SUB = 1 << BITS
_HALF = _SUB >> 1
#: the largest value with a bucket of its own (larger ones are counted as this): 2**40 us
HIGHEST = (1 << 40) - 1
#: the percentiles summaries report (``p99.9`` is 99.9)
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def bucket_of(value: int) -> int:
    """The index of the bucket that counts ``value`` (us, clamped to 0..HIGHEST)."""
    value = min(max(value, 0), HIGHEST)
    if value < _SUB:
        return value
    shift = value.bit_length() - BITS
    return _SUB + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def bounds_of(index: int) -> tuple[int, int]:
    """The values (us) bucket ``index`` counts: ``low <= v <= high``."""
    if index < _SUB:
        return index, index
    shift = (index - _SUB) // _HALF + 1
    mantissa = (index - _SUB) % _HALF + _HALF
    low = mantissa << shift
    return low, low + (1 << shift) - 1


#: the most buckets a histogram can use (4,352 with BITS 8)
BUCKETS = bucket_of(HIGHEST) + 1


def nearest_rank(q: float, count: int) -> int:
    """The 1-based rank of the ``q``-th percentile of ``count`` values, in exact
    arithmetic (99.9 / 100 * 1000 is 1000.0000000000001 in floating point)."""
    return max(math.ceil(Fraction(str(q)) * count / 100), 1)


class Histogram:
    """Counts of microsecond values in log-linear buckets, with exact count/min/max/sum."""

    __slots__ = ("counts", "count", "min", "max", "total")

    def __init__(self) -> None:
        self.counts: Dict[int, int] = {}
        self.count = 0
        self.min = 0
        self.max = 0
        self.total = 0  # sum of the values, for the mean

    def record(self, value: int, times: int = 1) -> None:
        """Count ``value`` (us; negative counts as 0) ``times`` times."""
        value = max(int(value), 0)
        index = bucket_of(value)
        self.counts[index] = self.counts.get(index, 0) + times
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += times
        self.total += value * times

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s counts to this one; returns self."""
        if other.count == 0:
            return self
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total
        return self

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        out = cls()
        for histogram in histograms:
            out.merge(histogram)
        return out

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (us) within the stated precision; 0 when empty."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within 0..100, got {q}")
        if self.count == 0:
            return 0.0
        rank = nearest_rank(q, self.count)
        if rank >= self.count:  # the largest value is known exactly
            return float(self.max)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bounds_of(index)
                return float(min(max((low + high) / 2, self.min), self.max))
        return float(self.max)  # not reached: the counts add up to count

    def summary(self) -> Dict[str, float]:
        """count, mean, min, the PERCENTILES (``p50`` .. ``p99.9``) and max, in us."""
        out: Dict[str, float] = {"count": self.count, "mean": self.mean, "min": self.min}
        for q in PERCENTILES:
            out[f"p{q:g}"] = self.percentile(q)
        out["max"] = self.max
        return out

    def bins(self) -> List[Tuple[int, int, int]]:
        """``(low, high, count)`` of every bucket holding values, low to high (us, inclusive)."""
        return [(*bounds_of(i), self.counts[i]) for i in sorted(self.counts)]

    def to_dict(self) -> dict:
        """JSON-able: buckets as ``[index, count]`` pairs in index order."""
        return {
            "unit": "us",
            "bits": BITS,
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.total,
            "buckets": [[i, self.counts[i]] for i in sorted(self.counts)],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Histogram:
        """The histogram of :meth:`to_dict`; ValueError when it is not one this can read."""
        if data.get("unit") != "us" or data.get("bits") != BITS:
            raise ValueError(
                f"histogram of unit {data.get('unit')!r} with {data.get('bits')!r} bits, "
                f"expected 'us' with {BITS}"
            )
        out = cls()
        pairs: List[List[int]] = data.get("buckets", [])
        for index, count in pairs:
            if not (0 <= int(index) < BUCKETS and int(count) > 0):
                raise ValueError(f"histogram bucket [{index}, {count}] out of range")
            out.counts[int(index)] = out.counts.get(int(index), 0) + int(count)
        out.count, out.total = int(data["count"]), int(data["sum"])
        out.min, out.max = int(data["min"]), int(data["max"])
        total = sum(out.counts.values())
        if total != out.count:
            raise ValueError(f"histogram buckets add up to {total}, not {out.count}")
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, min={self.min}, max={self.max})"


def merge_dicts(histograms: Iterable[Optional[dict]]) -> Histogram:
    """One histogram of several in :meth:`Histogram.to_dict` form (None ones skipped)."""
    return Histogram.merged(Histogram.from_dict(h) for h in histograms if h)
