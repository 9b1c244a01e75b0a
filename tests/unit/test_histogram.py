"""The latency histogram: buckets, precision against a sorted list, merge, bounded size."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parbench.worker.results import BITS, BUCKETS, HIGHEST, Histogram, bounds_of, bucket_of

values = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300)


def of(items: list[int]) -> Histogram:
    h = Histogram()
    for v in items:
        h.record(v)
    return h


def exact(items: list[int], q: float) -> int:
    """The nearest-rank percentile of the values themselves."""
    ordered = sorted(items)
    return ordered[max(math.ceil(Fraction(str(q)) * len(ordered) / 100), 1) - 1]


@given(st.integers(min_value=0, max_value=HIGHEST))
def test_every_value_lies_in_its_bucket_and_buckets_are_narrow(value: int) -> None:
    low, high = bounds_of(bucket_of(value))
    assert low <= value <= high
    assert high - low + 1 <= max(1, low / 2 ** (BITS - 1))


def test_buckets_tile_the_range_without_gaps() -> None:
    previous = -1
    for index in range(BUCKETS):
        low, high = bounds_of(index)
        assert low == previous + 1 and high >= low
        previous = high
    assert previous == HIGHEST


@given(values, st.sampled_from([0, 1, 25, 50, 90, 99, 99.9, 100]))
def test_percentiles_are_within_the_stated_precision(items: list[int], q: float) -> None:
    truth = exact(items, q)
    got = of(items).percentile(q)
    assert abs(got - truth) <= max(1.0, truth / 2**BITS)


@given(values, values, values)
def test_merge_is_associative_and_commutative(a: list[int], b: list[int], c: list[int]) -> None:
    left = of(a).merge(of(b)).merge(of(c))
    right = of(a).merge(of(b).merge(of(c)))
    swapped = of(c).merge(of(a)).merge(of(b))
    assert left == right == swapped == of(a + b + c)


@given(values)
def test_json_round_trip(items: list[int]) -> None:
    h = of(items)
    again = Histogram.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h and again.summary() == h.summary()


def test_size_is_bounded_whatever_the_number_of_values() -> None:
    h = Histogram()
    for i in range(200_000):
        h.record((i * 7919) % (10**8))
    assert len(h.counts) <= BUCKETS
    assert len(json.dumps(h.to_dict())) < 40_000
    h.record(10**15)  # beyond the range: counted in the last bucket, max exact
    assert h.max == 10**15 and bucket_of(10**15) == BUCKETS - 1


def test_summary_and_empty() -> None:
    assert Histogram().summary() == {
        "count": 0,
        "mean": 0.0,
        "min": 0,
        "p50": 0.0,
        "p90": 0.0,
        "p99": 0.0,
        "p99.9": 0.0,
        "max": 0,
    }
    h = of(list(range(1, 1001)))
    s = h.summary()
    assert s["count"] == 1000 and s["mean"] == 500.5 and s["min"] == 1 and s["max"] == 1000
    assert abs(s["p99.9"] - 999) <= 4 and abs(s["p50"] - 500) <= 2


@pytest.mark.parametrize(
    "bad",
    [
        {"unit": "ms", "bits": BITS, "count": 0, "min": 0, "max": 0, "sum": 0, "buckets": []},
        {"unit": "us", "bits": 7, "count": 0, "min": 0, "max": 0, "sum": 0, "buckets": []},
        {"unit": "us", "bits": BITS, "count": 2, "min": 1, "max": 1, "sum": 2, "buckets": [[1, 1]]},
        {
            "unit": "us",
            "bits": BITS,
            "count": 1,
            "min": 1,
            "max": 1,
            "sum": 1,
            "buckets": [[-1, 1]],
        },
    ],
)
def test_a_histogram_this_cannot_read_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Histogram.from_dict(bad)


def test_p999_of_a_thousand_values_is_not_the_max() -> None:
    h = of([1000] * 999 + [5_000_000])
    assert abs(h.percentile(99.9) - 1000) <= 1000 / 2**BITS and h.percentile(100) == 5_000_000
