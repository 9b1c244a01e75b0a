"""Measurements that warn (issue 18, part 2): a phase too short for its figures is marked
and said, percentiles the sample count cannot support are None (shown ``-``), and a
partial last series interval is no fall to zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parbench.controller.analysis import adequacy, measures
from parbench.controller.analysis.check import check
from parbench.controller.analysis.compare import compare_phase
from parbench.controller.analysis.history import History
from parbench.controller.analysis.stats import summarise
from parbench.controller.output.report import compare_table, latency_lines, series_lines
from parbench.controller.run.settings import default_of
from parbench.worker.results import Histogram

from .test_history import make_run
from .test_stats import rec

MIB = 1024 * 1024


def hist(*values: int) -> dict:
    h = Histogram()
    for v in values:
        h.record(v)
    return h.to_dict()


def demo_records(seconds: float = 0.48, interval: float = 1.0) -> list:
    """Today's demo: 3 nodes x 2 clients, one 5 MiB file each, under half a second; each
    client's series one partial interval."""
    out = []
    for n in range(3):
        for c in range(2):
            series = {"start": 100.0, "interval": interval, "bytes": [5 * MIB]}
            out.append(
                rec(
                    f"n{n}",
                    c,
                    bytes=5 * MIB,
                    start=100.0,
                    end=100.0 + seconds - 0.01 * (n + c),
                    series=series,
                    latency={"file": hist(380_000 + 1000 * n + c), "write": hist(*[300] * 5)},
                )
            )
    return out


# --- percentiles the count cannot support -----------------------------------------------


def test_the_rule_n_times_one_minus_q_at_least_one() -> None:
    assert [adequacy.needed(q) for q in (50, 90, 99, 99.9)] == [2, 10, 100, 1000]
    assert adequacy.supported(1000, 99.9) and not adequacy.supported(999, 99.9)


def test_unsupported_percentiles_are_none_and_the_count_stays() -> None:
    summary = summarise(demo_records())
    file = summary.latency["file"]
    assert file["count"] == 6 and file["p50"] is not None
    assert file["p90"] is None and file["p99"] is None and file["p99.9"] is None
    assert file["max"] == 382_001
    write = summary.latency["write"]  # 30 samples: p90 yes, p99 no
    assert write["count"] == 30 and write["p90"] is not None and write["p99"] is None
    assert summary.per_node[0].latency["file"]["p90"] is None
    assert json.loads(json.dumps(summary.to_dict()))["latency"]["file"]["p99"] is None
    many = summarise(
        [rec("n0", 0, bytes=1, start=1.0, end=2.0, latency={"op": hist(*range(1, 101))})]
    )
    assert many.latency["op"]["p99"] is not None and many.latency["op"]["p99.9"] is None


def test_latency_lines_show_a_dash_and_three_significant_digits() -> None:
    latency = {
        "file": {"count": 6, "p50": 381952.0, "p90": None, "p99": None, "p99.9": None,
                 "max": 477769},
        "write": {"count": 30, "p50": 337.0, "p90": 106240.0, "p99": None, "p99.9": None,
                  "max": 1_226_727},
    }  # fmt: skip
    lines = latency_lines(latency)
    assert lines[2].split() == ["write", "30", "0.337", "106", "-", "-", "1227"]
    assert lines[3].split() == ["file", "6", "382", "-", "-", "-", "478"]


def test_compare_and_exports_skip_a_p99_that_is_not_there(tmp_path: Path) -> None:
    from parbench.controller.output import exports

    figures = {"aggregate_throughput": 10.0, "latency": {"file": {"count": 6, "p99": None}}}
    assert [c.metric for c in compare_phase("write", figures, figures)] == ["aggregate"]
    run = make_run(tmp_path, 100.0)
    summary = run.dir.read_doc("summary.json")
    summary["write"]["latency"]["file"] = {"count": 6, "p99": None}
    run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
    run.dir.write_doc("failures.json", {"write": []})
    exports.write(run.dir)
    assert "file_latency_p99" not in (run.path / "metrics.prom").read_text().split("# EOF")[0]


# --- a phase too short for its figures --------------------------------------------------


def test_short_phase_is_marked_and_warned_in_the_summary_json() -> None:
    summary = adequacy.warned(summarise(demo_records()), 5.0)
    assert summary.short
    short, latency = summary.warnings
    assert short.startswith("short: write lasted 0.48 s (< short_phase_seconds 5 s;")
    assert "0.5 series intervals of 1 s, < 3" in short
    assert latency == (
        "too few samples for the file latency p99 (n=6; p99 needs n >= 100): shown as -"
    )
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["short"] is True and data["warnings"] == list(summary.warnings)
    again = summarise(demo_records()).restored(data)  # fab report, from the records
    assert again.short and again.warnings == summary.warnings


@pytest.mark.parametrize(
    "seconds, interval, threshold, short",
    [(10.0, 1.0, 5.0, False), (4.0, 1.0, 5.0, True), (10.0, 5.0, 5.0, True),
     (0.48, 1.0, 0.0, True), (4.0, 1.0, 0.0, False)],
)  # fmt: skip
def test_short_by_seconds_or_by_series_intervals(
    seconds: float, interval: float, threshold: float, short: bool
) -> None:
    series = {"start": 0.0, "interval": interval, "bytes": [1] * int(seconds / interval + 1)}
    summary = summarise([rec("n0", 0, bytes=10, start=0.0, end=seconds, series=series)])
    assert adequacy.warned(summary, threshold).short is short


def test_the_setting_is_declared_once_with_its_default() -> None:
    assert default_of("short_phase_seconds") == 5.0
    assert default_of("min_phase_seconds") == 0  # INVALID stays off by default


def test_a_timed_phase_is_judged_short_with_the_run_setting(tmp_path: Path) -> None:
    from parbench.controller.phases import _judged

    run = make_run(tmp_path, 100.0)
    rounds = run.inventory.settings.iteration_plan
    judged = _judged(run, summarise(demo_records()), rounds, None, 6, [])
    assert judged.short and judged.warnings[0].startswith("short: write lasted")
    assert judged.valid  # short is said, not made invalid


# --- the last, partial series interval ------------------------------------------------


def test_a_partial_last_interval_is_over_its_own_length_or_left_out() -> None:
    a = rec("n0", 0, bytes=3 * MIB, start=0.0, end=2.6,
            series={"start": 0.0, "interval": 1.0, "bytes": [MIB, MIB, MIB]})  # fmt: skip
    series = summarise([a]).series
    assert series["last"] == pytest.approx(0.6)
    rates = measures.rates(series)
    assert [r for _, _, r in rates] == pytest.approx([MIB, MIB, MIB / 0.6])
    assert series_lines(series) == ["MiB/s per 1 s: 1.00 1.00 1.67 (the last over its 0.6 s)"]
    # the demo: 29.91 then 0.09 for the last 3 ms; now that 3 ms is no rate
    b = rec("n0", 0, bytes=30 * MIB, start=0.0, end=1.003,
            series={"start": 0.0, "interval": 1.0, "bytes": [29.91 * MIB, 0.09 * MIB]})  # fmt: skip
    series = summarise([b]).series
    assert series_lines(series) == ["MiB/s per 1 s: 29.91 (a last 0.003 s left out)"]
    assert sum(series["bytes"]) == pytest.approx(30 * MIB, abs=1)  # the bytes stay
    full = summarise([rec("n0", 0, bytes=2, start=0.0, end=2.0,
                          series={"start": 0.0, "interval": 1.0, "bytes": [1, 1]})])  # fmt: skip
    assert "last" not in full.series
    only = summarise(demo_records()).series  # one interval, 0.48 s of it: kept, scaled
    assert series_lines(only) == ["MiB/s per 1 s: 62.50 (the last over its 0.48 s)"]


def test_the_over_time_plot_draws_no_fall_to_zero() -> None:
    from parbench.controller.output import plots

    b = rec("n0", 0, bytes=30 * MIB, start=0.0, end=1.003,
            series={"start": 0.0, "interval": 1.0, "bytes": [29.91 * MIB, 0.09 * MIB]})  # fmt: skip
    summary = summarise([b])
    svg = plots.over_time(summary)
    assert svg is not None
    drawn = measures.rates(summary.series)
    assert len(drawn) == 1 and drawn[0][2] / MIB == pytest.approx(29.91)


# --- history, check, compare ------------------------------------------------------------


def test_history_stores_the_marker_and_check_notes_short_runs(tmp_path: Path) -> None:
    db = History(tmp_path / "h.sqlite")
    runs = []
    for index in range(6):
        run = make_run(tmp_path, 700.0 + index)
        if index < 2:
            run.dir.update_doc(
                "summary.json",
                {"write": {**run.dir.read_doc("summary.json")["write"], "short": True}},
            )
        db.record(run.dir)
        runs.append(run)
    assert [e.short for e in db.entries()] == [True, True, False, False, False, False]
    found = check(db, runs[-1].run_id, runs[-1].dir.read_doc("summary.json", {}))
    assert any("2 of 6 run(s) in the series were short" in note for note in found.notes)


def test_compare_marks_a_change_of_a_short_run() -> None:
    figures = {"aggregate_throughput": 10.0}
    (change,) = compare_phase("write", figures, {**figures, "short": True})
    assert change.short
    assert compare_table("a", "b", [change]).splitlines()[-1].endswith("no test (short run)")


def test_only_a_headline_percentile_left_out_is_warned() -> None:
    """The block shows the headline operation's p50 and p99: a p99.9 (or another
    operation's p99) left out is a "-" in the latency table, not a warning on every phase
    (at 64 nodes x 2 clients each phase warned of p99.9 at n=128)."""
    enough = {"count": 128, "p50": 1.0, "p90": 2.0, "p99": 3.0, "p99.9": None}
    few = {"count": 6, "p50": 1.0, "p90": None, "p99": None, "p99.9": None}
    assert adequacy.latency_warning({"file": enough, "close": few}, "file") is None
    assert adequacy.latency_warning({"create": few}, "create") == (
        "too few samples for the create latency p99 (n=6; p99 needs n >= 100): shown as -"
    )
    assert adequacy.latency_warning({}, "file") is None
