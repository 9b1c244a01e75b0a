from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from parbench.controller.analysis.stats import summarise
from parbench.controller.output.report import phase_table, plan_lines, verify_table
from parbench.controller.run.pairing import cross_node
from parbench.worker import results
from parbench.worker.results import ERROR_LIMIT, ClientResult, read_lines

from .fabtasks import exit_of
from .test_history import make_run

MIB = 1024 * 1024


def rec(node: str, client: int, **kw: object) -> ClientResult:
    kw.setdefault("phase", "write")
    kw.setdefault("path", f"/parbench/{node}/{client}")
    return ClientResult(run_id="r", node=node, client=client, host="h", backend="alluxio", **kw)  # type: ignore[arg-type]


WRITE = [
    rec("n0", 0, bytes=10 * MIB, start=100.0, end=101.0, ready=99.0),  # 10 MiB/s
    rec("n0", 1, bytes=10 * MIB, start=100.5, end=102.5, ready=99.0),  # 5 MiB/s
    rec("n1", 0, bytes=20 * MIB, start=100.25, end=102.0, ready=99.02),  # 11.43 MiB/s
    rec("n1", 1, status="error", error="ConnectionError: refused\n  at line 3"),
]


def test_phase_table() -> None:
    assert phase_table(summarise(WRITE)).splitlines() == [
        "write: 16.00 MiB/s aggregate (last done; first done 21.07), 40.00 MiB (41943040"
        " bytes, 3 files) in 2.500 s, start skew 500.0 ms, ready skew 20.0 ms, ok 3, errors 1",
        "  node  clients  ok  errors  files    MiB      s  MiB/s",
        "  n0          2   2       0      2  20.00  2.500   8.00",
        "  n1          2   1       1      1  20.00  1.750  11.43",
        "per client MiB/s (n=3): min 5.00  median 10.00  p90 11.14  max 11.43",
        "errors (1):",
        "  n1/1 /parbench/n1/1: error: ConnectionError: refused at line 3",
    ]


def test_phase_table_without_errors_or_records() -> None:
    assert phase_table(summarise(WRITE[:3])).splitlines()[-1].startswith("per client MiB/s")
    assert phase_table(summarise([], phase="read")).splitlines() == [
        "read: 0.00 MiB/s aggregate, 0.00 MiB (0 bytes, 0 files) in 0.000 s,"
        " start skew 0.0 ms, ready skew 0.0 ms, ok 0, errors 0",
        "  (no records)",
    ]


def test_verify_table() -> None:
    good, bad = "ab" * 32, "cd" * 32
    records = [
        rec("n1", 0, phase="verify-read", path="/parbench/n0/0", local_path="/w/read/0",
            bytes=5 * MIB, checksum=good, expected_bytes=5 * MIB, expected_checksum=good),
        rec("n1", 1, phase="verify-read", path="/parbench/n0/1", local_path="/w/read/1",
            status="mismatch", bytes=1000, checksum=bad, expected_bytes=5 * MIB,
            expected_checksum=good),
        rec("n0", 0, phase="verify-read", path="/parbench/n1/0", local_path="/w/read/0",
            status="missing", expected_bytes=5 * MIB, expected_checksum=good,
            error="No such file"),
        rec("n0", 0, phase="verify-write", bytes=5 * MIB, checksum=good),
    ]  # fmt: skip
    assert verify_table(records).splitlines() == [
        "verify-read: 1 of 3 files ok, 2 not ok (1 mismatch, 1 missing)",
        "  node  client  path       status    size found/expected  checksum found/expected"
        "    error",
        "  n0    0       /w/read/0  missing   -/5242880            -/abababababab"
        "             No such file",
        "  n1    1       /w/read/1  mismatch  1000/5242880         cdcdcdcdcdcd/abababababab",
        "verify-write: all 1 files ok",
    ]
    assert verify_table([]) == "verify: no records"


def test_verify_table_unknown_size() -> None:
    record = rec("n0", 0, phase="verify-write", status="mismatch", bytes=None, checksum="ee" * 16)
    assert verify_table([record]).splitlines()[-1] == (
        "  n0    0       /parbench/n0/0  mismatch  -/-                  eeeeeeeeeeee/-"
    )


def test_plan_lines() -> None:
    assert plan_lines(cross_node({"n0": 2, "n1": 2})) == [
        "cross-node read: 4 clients on 2 nodes, each reads one file written on another node",
        "every written file is read exactly once",
        "  reader      source",
        "  n0/0    <-  n1/0",
        "  n0/1    <-  n1/1",
        "  n1/0    <-  n0/0",
        "  n1/1    <-  n0/1",
    ]


def test_phase_table_shows_each_error_once_on_one_short_line() -> None:
    cause = "alluxio proxy 10.0.0.5:39999: write: connection reset by peer after 3.0 MiB"
    records = [
        rec("n0", 0, status="error", error=f"h: /parbench/n0/0: {cause}; partial file deleted",
            detail="Traceback (most recent call last):\n  ...\nConnectionResetError: ..."),
        rec("n0", 1, status="error", error="h: /parbench/n0/1: " + "Max retries exceeded\n" * 60),
        rec("n0", 2, status="error"),
    ]  # fmt: skip
    lines = phase_table(summarise(records)).splitlines()
    assert lines[-4:-2] == [
        "errors (3):",
        f"  n0/0 /parbench/n0/0: error: {cause}; partial file deleted",
    ]
    shown = "  n0/1 /parbench/n0/1: error: "
    assert lines[-2].startswith(shown + "Max retries exceeded Max") and " ... " in lines[-2]
    assert len(lines[-2]) == len(shown) + ERROR_LIMIT
    assert lines[-1] == "  n0/2 /parbench/n0/2: error"
    assert sum(cause in line for line in lines) == 1 and "Traceback" not in "\n".join(lines)


def test_verify_table_shows_the_error_without_host_and_path() -> None:
    error = "h: /parbench/n0/0: alluxio proxy p:39999: read: connection refused"
    record = rec("n0", 0, phase="verify-write", status="error", error=error)
    assert verify_table([record]).splitlines()[-1].split("  ")[-1] == (
        "alluxio proxy p:39999: read: connection refused"
    )


def test_latency_and_series_lines() -> None:
    from parbench.controller.output.report import latency_lines, series_lines

    latency = {
        "write": {
            "count": 8,
            "p50": 1500.0,
            "p90": 2000.0,
            "p99": 2500.0,
            "p99.9": 2600.0,
            "max": 2600,
        },
        "create": {
            "count": 2,
            "p50": 800.0,
            "p90": 900.0,
            "p99": 900.0,
            "p99.9": 900.0,
            "max": 900,
        },
    }
    lines = latency_lines(latency)
    assert lines[0] == "latency (ms):"
    assert lines[2].split() == ["create", "2", "0.800", "0.900", "0.900", "0.900", "0.900"]
    assert lines[3].split()[:3] == ["write", "8", "1.50"]  # 3 significant digits
    assert latency_lines({}) == [] and series_lines(None) == []
    mib = 1024 * 1024
    assert series_lines({"start": 0, "interval": 0.5, "bytes": [mib, 2 * mib]}) == [
        "MiB/s per 0.5 s: 2.00 4.00"
    ]
    long = series_lines({"start": 0, "interval": 1, "bytes": [mib] * 20}, most=4)
    assert long == ["MiB/s per 1 s: 1.00 1.00 ... (16 more) ... 1.00 1.00"]


def test_iteration_lines_show_the_spread_and_each_iteration() -> None:
    from parbench.controller.analysis.stats import summarise
    from parbench.controller.output.report import iteration_line, iteration_lines
    from parbench.controller.run.iterations import IterationPlan
    from parbench.worker.results import ClientResult

    mib = 1024 * 1024

    def rec(iteration: int, seconds: float, warmup: bool = False) -> ClientResult:
        return ClientResult(
            run_id="r",
            phase="write",
            node="n0",
            client=0,
            host="h",
            backend="alluxio",
            path="/p/n0/0",
            bytes=mib,
            start=10.0 * iteration,
            end=10.0 * iteration + seconds,
            iteration=iteration,
            warmup=warmup,
        )

    summary = summarise([rec(0, 1.0, True), rec(1, 0.5), rec(2, 0.25)]).decided("stable: x")
    lines = iteration_lines(summary)
    assert lines[0].startswith("iterations: 2 measured after 1 warm-up; aggregate MiB/s mean 3.00")
    assert "min 2.00 median 3.00 max 4.00" in lines[0]
    assert lines[2].split() == ["1", "warm-up", "1.00", "1.000", "0.0"]
    assert lines[-1] == "iterations ended: stable: x"
    assert iteration_lines(summarise([rec(0, 1.0)])) == []
    assert iteration_line("read", 0, True, IterationPlan(warmup=1), mib) == (
        "read iteration 1 of 2 (warm-up, not counted): 1.00 MiB/s aggregate"
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("bytes", "abc", "field 'bytes': expected an integer or null, got 'abc'"),
        ("client", 1.5, "field 'client': expected an integer, got 1.5"),
        ("start", "soon", "field 'start': expected a finite number, got 'soon'"),
        ("end", float("nan"), "field 'end': expected a finite number, got nan"),
        ("replaced", "yes", "field 'replaced': expected true or false, got 'yes'"),
        ("error", 5, "field 'error': expected a string or null, got 5"),
        ("latency", [1], "field 'latency': expected null or an object of objects, got [1]"),
        ("ops", {"create": {"count": "x", "start": 1, "end": 2}}, "field 'ops': "),
        ("series", {"start": 1, "interval": 1, "bytes": ["x"]}, "field 'series': "),
    ],
)
def test_a_records_fields_are_type_checked_on_load(
    field: str, value: object, expected: str
) -> None:
    data = json.loads(WRITE[0].to_json())
    data[field] = value
    with pytest.raises(ValueError) as info:
        list(read_lines([json.dumps(data)], "nodes/n0/write.jsonl"))
    assert str(info.value).startswith(f"nodes/n0/write.jsonl:1: {expected}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', '{"schema": "parbench.client/1"}'])
def test_a_record_that_is_no_object_or_lacks_fields_is_named(line: str) -> None:
    with pytest.raises(ValueError, match=r"^src:1: (expected a JSON object|missing field)"):
        list(read_lines([line], "src"))


@pytest.mark.parametrize("html", [False, True])
def test_report_names_a_damaged_record_and_shows_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture, html: bool
) -> None:
    run = make_run(tmp_path, 100.0)
    good = json.loads(WRITE[0].to_json())
    bad = {**good, "client": 1, "bytes": "abc"}
    records = run.path / "nodes" / "n0" / "write.jsonl"
    records.parent.mkdir(parents=True)
    records.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    stop = exit_of("report", tmp_path, run=run.run_id, html=html)
    out = capsys.readouterr().out
    assert (run.path / "report.html").exists() == html  # the page of what could be read
    assert "write: 1 node, 1 client" in out and "; 1 file, " in out  # the block of what was read
    assert stop.code == 1 and "\n" not in stop.message
    assert stop.message.startswith(
        f"failed: 1 damaged record(s) left out: {records}:2: field 'bytes'"
    )


def test_every_field_of_a_record_has_its_type() -> None:
    assert set(results._FIELD_TYPES) == {f.name for f in fields(ClientResult)}
