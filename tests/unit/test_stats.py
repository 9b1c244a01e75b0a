from __future__ import annotations

import json

import pytest

from parbench.controller.analysis.stats import (
    ClientSummary,
    Distribution,
    Failure,
    NodeSummary,
    percentile,
    summarise,
)
from parbench.worker.results import ClientResult


def rec(node: str, client: int, **kw: object) -> ClientResult:
    kw.setdefault("phase", "write")
    return ClientResult(
        run_id="r",
        node=node,
        client=client,
        host="h",
        backend="alluxio",
        path=f"/parbench/{node}/{client}",
        **kw,  # type: ignore[arg-type]
    )


# n1's clock runs 10 s ahead of the controller's: its times are shifted back by 10 s.
RECORDS = [
    rec("n0", 0, bytes=100, start=10.0, end=12.0, ready=9.0),  # 50 B/s
    rec("n0", 1, bytes=300, start=11.0, end=14.0, ready=9.5),  # 100 B/s
    rec("n1", 0, bytes=200, start=21.0, end=23.0, ready=19.2, clock_offset=10.0),  # 100 B/s
    rec("n1", 1, status="error", error="refused", ready=19.0, clock_offset=10.0),
]


def test_percentile_interpolates_linearly() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)  # rank 2.7: 3 + 0.7 * (4 - 3)
    assert percentile(values, 100) == 4.0
    assert percentile([10.0, 20.0], 90) == pytest.approx(19.0)
    assert percentile([7.0], 90) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_distribution() -> None:
    assert Distribution.of([4.0, 1.0, 3.0, 2.0]) == Distribution(
        4, 1.0, 2.5, pytest.approx(3.7), 4.0
    )
    assert Distribution.of([]) == Distribution(0, 0.0, 0.0, 0.0, 0.0)


def test_phase_summary_math() -> None:
    s = summarise(RECORDS)
    assert (s.phase, s.clients, s.ok, s.bytes) == ("write", 4, 3, 600)
    assert s.errors == (Failure("n1", 1, "/parbench/n1/1", "error", "refused", "h"),)
    # on the controller clock: first start 10 (n0/0), last end 14 (n0/1)
    assert (s.first_start, s.last_end, s.wall_seconds) == (10.0, 14.0, 4.0)
    # 600 bytes over 4 s, not the sum of the client rates (250)
    assert s.aggregate_throughput == 150.0
    assert s.per_client == Distribution(3, 50.0, 100.0, 100.0, 100.0)
    # starts 10, 11, 11 (21 - 10): skew 1 s, not 11 s; ready 9, 9.5, 9.2 (failed ignored)
    assert s.start_skew == 1.0
    assert s.ready_skew == pytest.approx(0.5)
    assert s.per_node == (
        NodeSummary("n0", 2, 2, 0, 400, 10.0, 14.0, 100.0, 4.0, 2),
        NodeSummary("n1", 2, 1, 1, 200, 11.0, 13.0, 100.0, 2.0, 1),
    )
    assert s.by_client[2] == ClientSummary("n1", 0, "ok", 200, 11.0, 13.0, 100.0)
    assert s.by_client[3] == ClientSummary("n1", 1, "error", 0, 0.0, 0.0, 0.0, files=0)
    # first done at 12 (n0/0): n0/0 100 B, n0/1 1/3 of 300, n1/0 half of 200, over 2 s
    assert s.first_done is not None and s.first_done.seconds == 2.0
    assert s.first_done.bytes == pytest.approx(300.0)
    assert s.first_done.throughput == pytest.approx(150.0)
    assert s.files == 3


def test_to_dict_is_json() -> None:
    data = json.loads(json.dumps(summarise(RECORDS).to_dict()))
    assert data["aggregate_throughput"] == 150.0
    assert data["per_client"] == {"n": 3, "min": 50.0, "median": 100.0, "p90": 100.0, "max": 100.0}
    assert data["per_node"][1]["node"] == "n1"
    assert data["errors"][0]["error"] == "refused" and data["errors"][0]["host"] == "h"


def test_no_records() -> None:
    s = summarise([], phase="read")
    assert (s.phase, s.clients, s.ok, s.errors, s.bytes) == ("read", 0, 0, (), 0)
    assert (s.first_start, s.last_end, s.wall_seconds, s.aggregate_throughput) == (
        None,
        None,
        0.0,
        0.0,
    )
    assert s.per_client.n == 0
    assert (s.per_node, s.start_skew, s.ready_skew) == ((), 0.0, 0.0)
    assert summarise([]).phase == ""


def test_all_failures() -> None:
    s = summarise([rec("n0", 0, status="error", error="boom"), rec("n1", 0, status="error")])
    assert (s.ok, len(s.errors), s.bytes, s.first_start, s.aggregate_throughput) == (
        0,
        2,
        0,
        None,
        0.0,
    )
    assert s.per_node[0] == NodeSummary("n0", 1, 0, 1, 0, None, None, 0.0)


def test_zero_durations() -> None:
    s = summarise([rec("n0", 0, bytes=10, start=5.0, end=5.0), rec("n1", 0, start=5.0, end=5.0)])
    assert (s.wall_seconds, s.aggregate_throughput, s.bytes) == (0.0, 0.0, 10)
    assert s.per_client == Distribution(2, 0.0, 0.0, 0.0, 0.0)


def test_mixed_phases_are_refused() -> None:
    with pytest.raises(ValueError, match="several phases"):
        summarise([rec("n0", 0), rec("n0", 0, phase="read")])
    with pytest.raises(ValueError, match="several phases"):
        summarise([rec("n0", 0)], phase="read")


def test_unknown_size_counts_as_zero() -> None:
    s = summarise([rec("n0", 0, phase="verify-write", bytes=None, start=1.0, end=2.0)])
    assert (s.ok, s.bytes, s.aggregate_throughput, s.by_client[0].bytes) == (1, 0, 0.0, 0)


def test_series_are_aligned_on_the_controller_clock() -> None:
    """n1 runs 10 s ahead: its series, started at 20.5 on its clock, is at 10.5 here and
    its intervals are split over the grid's in proportion to their overlap."""
    series = {"start": 10.0, "interval": 1.0, "bytes": [10, 10, 10]}
    a = rec("n0", 0, bytes=30, start=10.0, end=13.0, series=series)
    series = {"start": 20.5, "interval": 1.0, "bytes": [10, 10]}
    b = rec("n1", 0, bytes=20, start=20.5, end=22.5, clock_offset=10.0, series=series)
    summary = summarise([a, b])
    assert summary.series == {"start": 10.0, "interval": 1.0, "bytes": [15, 20, 15]}
    assert sum(summary.series["bytes"]) == 50
    assert summary.per_node[1].series == {"start": 10.5, "interval": 1.0, "bytes": [10, 10]}


def test_latency_is_merged_per_node_and_phase() -> None:
    from parbench.worker.results import Histogram

    def hist(*values: int) -> dict:
        h = Histogram()
        for v in values:
            h.record(v)
        return h.to_dict()

    a = rec("n0", 0, bytes=1, start=1.0, end=2.0, latency={"write": hist(100, 200)})
    b = rec("n0", 1, bytes=1, start=1.0, end=2.0, latency={"write": hist(300), "close": hist(5)})
    c = rec("n1", 0, bytes=1, start=1.0, end=2.0, latency={"write": hist(400)})
    summary = summarise([a, b, c])
    assert summary.latency["write"]["count"] == 4 and summary.latency["write"]["max"] == 400
    assert summary.latency["close"]["count"] == 1
    assert Histogram.from_dict(summary.histograms["write"]).count == 4
    assert summary.per_node[0].latency["write"]["count"] == 3
    assert summary.per_node[1].latency == {"write": summary.per_node[1].latency["write"]}
    assert summarise([rec("n0", 0, bytes=1, start=1.0, end=2.0)]).latency == {}


def test_iterations_are_summarised_apart_and_warmup_left_out() -> None:
    """Two measured iterations of 100 B in 1 s and 300 B in 1 s, after a warm-up of
    1000 B in 1 s: the phase is 400 B over 2 s; the warm-up counts only as an iteration
    apart (and its error would still be listed)."""
    warm = rec("n0", 0, bytes=1000, start=0.0, end=1.0, iteration=0, warmup=True)
    broken = rec("n0", 1, status="error", error="boom", iteration=0, warmup=True)
    one = rec("n0", 0, bytes=100, start=10.0, end=11.0, iteration=1)
    two = rec("n0", 0, bytes=300, start=20.0, end=21.0, iteration=2)
    s = summarise([warm, broken, one, two])
    assert (s.bytes, s.wall_seconds, s.aggregate_throughput) == (400, 2.0, 200.0)
    assert (s.first_start, s.last_end, s.ok) == (10.0, 21.0, 2)
    assert [e.client for e in s.errors] == [1]
    it = s.iterations
    assert [i.iteration for i in it.warmup] == [0] and it.warmup[0].errors == 1
    assert [i.aggregate_throughput for i in it.measured] == [100.0, 300.0]
    assert it.throughput.n == 2 and it.throughput.mean == 200.0
    assert s.per_node[0].throughput == 200.0
    assert s.decided("done").iterations.verdict == "done"
    assert json.loads(json.dumps(s.to_dict()))["iterations"]["throughput"]["values"] == [
        100.0,
        300.0,
    ]


def test_first_done_counts_from_the_series_where_there_is_one() -> None:
    """Two clients started at 0: a stops at 2 s; b moved 10 B in its first second and
    90 B in its second half-rate... its series says what it had moved at 2 s."""
    a = rec("n0", 0, bytes=200, start=0.0, end=2.0, files=4)
    series = {"start": 0.0, "interval": 1.0, "bytes": [10, 90, 100, 200]}
    b = rec("n0", 1, bytes=400, start=0.0, end=4.0, files=8, series=series)
    s = summarise([a, b])
    assert s.first_done.seconds == 2.0 and s.first_done.bytes == 300.0  # 200 + 10 + 90
    assert s.aggregate_throughput == 150.0 and s.first_done.throughput == 150.0
    assert s.files == 12 and s.iterations.measured[0].files == 12
    mid = summarise([a, rec("n0", 1, bytes=400, start=0.0, end=4.0)])  # no series: even
    assert mid.first_done.bytes == 400.0
