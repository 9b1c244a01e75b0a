"""The figures (matplotlib SVG) and the run's and a sweep's HTML pages, from made-up
records; the page is opened in a real browser by the integration tests."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from parbench.controller.analysis.changepoint import ChangePoint
from parbench.controller.analysis.history import History
from parbench.controller.analysis.stats import summarise
from parbench.controller.output import htmlreport, plots
from parbench.controller.run.rundir import RunDir
from parbench.worker.results import ClientResult, Histogram

MIB = 1024 * 1024
SVG = "{http://www.w3.org/2000/svg}"


def rec(node: str, client: int, **kw: object) -> ClientResult:
    kw.setdefault("phase", "write")
    kw.setdefault("path", f"/parbench/{node}/{client}")
    return ClientResult(run_id="r", node=node, client=client, host="h", backend="alluxio", **kw)  # type: ignore[arg-type]


def _latency(*values: int) -> dict:
    h = Histogram()
    for v in values:
        h.record(v)
    return {"file": h.to_dict(), "write": h.to_dict()}


def _series(start: float, *moved: int) -> dict:
    return {"start": start, "interval": 0.5, "bytes": list(moved)}


WRITE = [
    rec("n0", 0, bytes=10 * MIB, start=100.0, end=101.0, ready=99.0,
        latency=_latency(900, 1200, 40_000), series=_series(100.0, 5 * MIB, 5 * MIB)),
    rec("n0", 1, bytes=10 * MIB, start=100.5, end=102.5, ready=99.0,
        latency=_latency(700, 5000), series=_series(100.5, 2 * MIB, 3 * MIB, 5 * MIB)),
    rec("n1", 0, bytes=20 * MIB, start=100.25, end=102.0, ready=99.02, clock_offset=0.01,
        series=_series(100.26, 8 * MIB, 12 * MIB)),
    rec("n1", 1, status="error", error="h: /parbench/n1/1: ConnectionError: refused"),
]  # fmt: skip


def _comments(svg: str) -> list[str]:
    """matplotlib draws text as paths and keeps each text as an XML comment."""
    return [c.strip() for c in re.findall(r"<!--(.*?)-->", svg, re.S)]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def test_client_bars_one_bar_per_client_coloured_by_node() -> None:
    svg = plots.client_bars(summarise(WRITE))
    assert svg is not None
    _parse(svg)
    texts = _comments(svg)
    assert "write: throughput per client" in texts
    assert {"n0", "n1", "MiB/s", "median 10.0"} <= set(texts)
    assert plots.client_bars(summarise([], phase="read")) is None


def test_timeline_rows_per_client_and_the_start_spread() -> None:
    svg = plots.timeline("write", WRITE)
    assert svg is not None
    texts = _comments(svg)
    # n1/1 never started: no row; the starts spread 0.5 s (n1/0 on the controller clock)
    assert {"n0/0", "n0/1", "n1/0"} <= set(texts) and "n1/1" not in texts
    assert any("start spread 500.0 ms" in t for t in texts)
    assert plots.timeline("write", [rec("n0", 0, status="error")]) is None
    # iterations a minute apart, each started together: the spread is each one's
    again = [replace(r, iteration=1, start=r.start + 60, end=r.end + 60) for r in WRITE]
    repeated = plots.timeline("write", [r for r in WRITE + again if r.client == 0])
    assert repeated is not None
    assert any(
        "start spread 240.0 ms (the largest of 2 iterations)" in t for t in _comments(repeated)
    )


def test_over_time_and_latency_from_the_summary() -> None:
    summary = summarise(WRITE)
    over = plots.over_time(summary)
    assert over is not None and "write: throughput over time" in _comments(over)
    assert {"all nodes", "n0", "n1"} <= set(_comments(over))
    # a legend under the axes (figure.legend), not over the peaks: none on the axes
    assert "legend_1" in over
    latency = plots.latency("write", summary.histograms)
    assert latency is not None
    texts = _comments(latency)
    assert "write: latency per operation" in texts
    assert "file (n=5)" in texts  # 5 files support no p99 (controller/analysis/adequacy.py)
    assert plots.latency("write", {}) is None
    assert plots.over_time(summarise([rec("n0", 0, bytes=1, start=1.0, end=2.0)])) is None


def test_trend_marks_change_points_and_needs_two_runs() -> None:
    points = [ChangePoint(index=4, p_value=0.001, before=100.0, after=60.0)]
    svg = plots.trend("write", [f"run{i}" for i in range(7)], [100, 101, 99, 100, 60, 61, 59],
                      [True] * 7, points)  # fmt: skip
    assert svg is not None
    texts = _comments(svg)
    assert "-40.0 % (p=0.001)" in texts and "run6" in texts
    assert plots.trend("write", ["a"], [1.0], [True], []) is None


def test_sweep_plot_leaves_failed_points_out() -> None:
    svg = plots.sweep("clients", {"write": [("1", 10.0), ("2", None), ("4", 30.0)]})
    assert svg is not None and "throughput against clients" in _comments(svg)
    assert plots.sweep("clients", {"write": [("1", None)]}) is None


def _run(tmp_path: Path) -> RunDir:
    run = RunDir.create(tmp_path, "20261126T000000Z-abcd")
    run.write_doc(
        "run.json",
        {
            "created": "2026-11-26T00:00:00Z",
            "controller": {"hostname": "laptop"},
            "inventory": {"document": {"nodes": [{"id": "n0"}, {"id": "n1"}]}},
            "reference": {"path": "data/x", "bytes": 10 * MIB},
            "labels": {"cluster": "c1"},
            "versions": {"alluxio": "0.1.4"},
        },
    )
    run.write_doc("cluster.json", {"nodes": {"n0": "alluxio 2.9.6"}, "version": "alluxio 2.9.6"})
    return run


def _images(page: str) -> list[str]:
    found = re.findall(r"src='data:image/svg\+xml;base64,([^']+)'", page)
    return [base64.b64decode(data).decode() for data in found]


def test_run_page_is_self_contained_with_verdict_tables_and_figures(tmp_path: Path) -> None:
    run = _run(tmp_path)
    summary = summarise(WRITE)
    page = htmlreport.run_page(run, {"write": summary}, {"write": WRITE}, [], None)
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched at view time: no script, every src/href a data URI
    assert "<script" not in page
    assert all(v.startswith("data:") for v in re.findall(r"(?:src|href)='([^']*)'", page))
    assert "parbench run 20261126T000000Z-abcd" in page
    assert "storage (cluster)</td><td>alluxio 2.9.6" in page and "cluster=c1" in page
    assert "FAILED: 1 record(s) not ok, 0 node failure(s)" in page
    assert "write n1/1 /parbench/n1/1: error: h: /parbench/n1/1: ConnectionError" in page
    # the verdict and the headline before anything else; tables, not console text
    assert "<pre" not in page
    assert page.index("FAILED:") < page.index("headline") < page.index("<h2>Settings")
    assert "<td>write</td><td class=n>16.00</td>" in page  # the headline's aggregate
    images = _images(page)
    assert len(images) == 7  # boxes, ECDF, heatmap, bars, timeline, over time, latency
    for svg in images:
        _parse(svg)


def test_run_page_says_ok_verified_and_the_check(tmp_path: Path) -> None:
    run = _run(tmp_path)
    ok = [r for r in WRITE if r.ok]
    verified = [rec(r.node, r.client, phase="verify-write", bytes=r.bytes) for r in ok]
    run.write_doc(
        "check.json", {"regressions": [], "notes": ["read: history too short"], "runs": 6}
    )
    page = htmlreport.run_page(
        run, {"write": summarise(ok)}, {"write": ok, "verify-write": verified}, [], None
    )
    assert "every record ok (6), verified" in page
    assert "check: no regression in 6 run(s)" in page and "check: read: history too short" in page
    assert "verify-write: all 3 files ok" in page


def test_run_page_trend_from_the_history(tmp_path: Path) -> None:
    """Seven runs of one config in the history, the last three slower: the trend shows
    them with one change point; a run alone says so."""
    db_path = tmp_path / "history.sqlite"
    ids = []
    with History(db_path) as db:
        for i, rate in enumerate([100, 101, 99, 100, 60, 61, 59]):
            run = RunDir.create(tmp_path, f"20261126T00000{i}Z-0000")
            ok = [r for r in WRITE if r.ok]
            records = [replace(r, bytes=rate * MIB, run_id=run.run_id) for r in ok]
            run.write_doc("run.json", {"created": f"2026-11-26T00:00:0{i}Z", "labels": {}})
            summary = summarise(records).judged({"k": 1}, "cafe", {}, ())
            run.write_doc("summary.json", {"write": summary.to_dict()})
            db.record(run)
            ids.append(run.run_id)
    page = htmlreport.run_page(run, {"write": summary}, {"write": records}, [], db_path)
    assert "7 runs of config cafe; 1 change point(s)" in page
    trend = _images(page)[-1]
    assert any(t.startswith("-40.") for t in _comments(trend))
    first = RunDir.open(tmp_path, ids[0])
    lone = htmlreport.run_page(first, {"write": summary}, {"write": records}, [], db_path)
    assert "history: 1 run(s) of config cafe" in lone


def test_sweep_page_plots_against_the_axis_with_most_values(tmp_path: Path) -> None:
    doc = {
        "sweep_id": "sweep-x",
        "points": [
            {"point": f"size={s},clients={c}", "values": {"size": s, "clients": c},
             "run_id": f"r{s}{c}", "error": None,
             "figures": {"write": {"aggregate_throughput": int(c) * 10 * MIB}}}
            for s in ("1MiB",) for c in ("1", "2", "4")
        ] + [{"point": "size=1MiB,clients=8", "values": {"size": "1MiB", "clients": "8"},
              "run_id": None, "error": "boom", "figures": None}],
    }  # fmt: skip
    target = htmlreport.write_sweep(tmp_path / "sweep-x.html", doc)
    page = target.read_text()
    (svg,) = _images(page)
    texts = _comments(svg)
    assert "throughput against clients" in texts and "write size=1MiB" in texts
    assert "run None: boom" not in page and "run -: boom" in page
    json.dumps(doc)  # the document stays plain JSON


# --- the page at any scale (issue 18, part 3) ---------------------------------------------


def test_natural_order_of_node_ids() -> None:
    from parbench.controller.run.natural import natural_key, naturally

    assert naturally(["n10", "n2", "n1", "n11", "n0"]) == ["n0", "n1", "n2", "n10", "n11"]
    assert sorted(["b2", "a10", "a9"], key=natural_key) == ["a9", "a10", "b2"]


def test_records_come_back_in_natural_node_order(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "20261126T000000Z-nat0")
    for node in ("n10", "n2", "n1"):
        folder = run.path / "nodes" / node
        folder.mkdir(parents=True)
        (folder / "write.jsonl").write_text(
            rec(node, 0, bytes=1, start=1.0, end=2.0).to_json() + "\n"
        )
    assert [r.node for r in run.records("write")] == ["n1", "n2", "n10"]
    assert [n.node for n in summarise(run.records("write")).per_node] == ["n1", "n2", "n10"]


def test_the_verdict_counts_failed_nodes_not_phases(tmp_path: Path) -> None:
    run = _run(tmp_path)
    failed = [{"node": n, "host": f"u@{n}:22", "step": "write", "cause": "refused"}
              for n in ("n3", "n10")]  # fmt: skip
    run.write_doc("failures.json", {"write": failed})
    lines = ["write: 2 node(s) failed: ..."]
    ok = [r for r in WRITE if r.ok]
    page = htmlreport.run_page(run, {"write": summarise(ok)}, {"write": ok}, lines, None)
    assert "FAILED: 0 record(s) not ok, 2 node failure(s) (n3, n10)" in page
    assert "<td>n10</td><td>u@n10:22</td>" in page  # the failures as a table


def test_settings_are_a_table_and_warnings_show_at_the_phase(tmp_path: Path) -> None:
    run = _run(tmp_path)
    summary = summarise([r for r in WRITE if r.ok]).judged(
        {"phase": "write", "clients": [2, 2], "size": 10 * MIB}, "cafe", {}, ()
    )
    from dataclasses import dataclass, fields

    from parbench.controller.analysis.stats import PhaseSummary

    @dataclass(frozen=True)
    class Warned(PhaseSummary):  # as PhaseSummary gets warnings (issue 18, part 2)
        warnings: tuple[str, ...] = ()

    values = {
        f.name: getattr(summary, f.name) for f in fields(PhaseSummary) if f.name != "warnings"
    }
    summary = Warned(**values, warnings=("too short: 2 series intervals",))
    page = htmlreport.run_page(run, {"write": summary}, {"write": WRITE}, [], None)
    assert "<th>setting</th><th>write</th>" in page
    assert "<td>clients</td><td>2 (each of 2)</td>" in page
    assert "{" not in page.split("<h2>Settings")[1].split("</table>")[1]  # no Python repr
    assert "write: too short: 2 series intervals" in page.split("<h2>write</h2>")[1]


def test_operation_colours_are_the_same_in_every_phase() -> None:
    write = plots.latency("write", {"write": WRITE[0].latency["write"]})  # type: ignore[index]
    read = plots.latency(
        "read", {"file": WRITE[0].latency["file"], "write": WRITE[0].latency["write"]}
    )  # type: ignore[index]
    colour = plots.OP_COLOURS["write"]
    assert write is not None and read is not None
    assert f"stroke: {colour}" in write and f"stroke: {colour}" in read


def test_trend_is_drawn_against_dates() -> None:
    when = [f"2026-11-{d:02d}T02:00:00Z" for d in range(1, 8)]
    svg = plots.trend("write", [f"run{i}" for i in range(7)], [100, 101, 99, 100, 60, 61, 59],
                      [True] * 7, [ChangePoint(4, 0.001, 100.0, 60.0)], when=when)  # fmt: skip
    assert svg is not None
    texts = _comments(svg)
    assert "run start (UTC)" in texts and "run6" not in texts
    assert any("Nov" in t or t.startswith("0") for t in texts), texts


def _legend_entries(svg: str) -> list[int]:
    """The number of entries of each legend of an SVG (matplotlib names its groups)."""
    root = _parse(svg)
    counts = []
    for group in root.iter(f"{SVG}g"):
        if (group.get("id") or "").startswith("legend_"):
            counts.append(sum(1 for g in group if (g.get("id") or "").startswith("text_")))
    return counts


def test_page_of_100_nodes_by_16_clients_is_small_and_its_legends_short(tmp_path: Path) -> None:
    from bench.page import synthetic

    records = synthetic(100, 16)
    summaries = {phase: summarise(found) for phase, found in records.items()}
    run = RunDir.create(tmp_path, "20261126T000000Z-big0")
    page = htmlreport.run_page(run, summaries, records, [], None)
    assert len(page.encode()) <= 2_000_000
    images = _images(page)
    assert len(images) >= 6
    for svg in images:
        assert all(n <= 10 for n in _legend_entries(svg)), _legend_entries(svg)
    # the slowest nodes by name, in a table; the heatmap and distributions drawn
    assert "slowest 10 nodes" in page and "<td>n5</td>" in page
    assert "write: throughput per node over time" in page
    # nodes in natural order in the nodes' table
    table = page.split("write: nodes")[1]
    assert table.index("<td>n2</td>") < table.index("<td>n10</td>")


def test_settings_read_as_a_person_writes_them_and_no_failures_is_no_table(
    tmp_path: Path,
) -> None:
    """Seen on a 64-node page: bytes as 5242880, True/False, the rounds as a repr
    (``until_stable=None``), and an empty "Node failures" table for a run without any."""
    run = _run(tmp_path)
    run.write_doc("failures.json", {"write": [], "read": []})
    config = {
        "phase": "write", "bytes": 5 * MIB, "chunk_size": MIB, "latency": True,
        "generated": False,
        "rounds": {"duration": 5.0, "iterations": 1, "until_stable": None, "warmup": 0},
    }  # fmt: skip
    summary = summarise([r for r in WRITE if r.ok]).judged(config, "cafe", {}, ())
    page = htmlreport.run_page(run, {"write": summary}, {"write": WRITE}, [], None)
    settings = page.split("<h2>Settings")[1].split("<h2>")[0]
    assert "<td>bytes</td><td>5 MiB</td>" in settings
    assert "<td>chunk_size</td><td>1 MiB</td>" in settings
    assert "<td>latency</td><td>yes</td>" in settings
    assert "<td>generated</td><td>no</td>" in settings
    assert "<td>rounds</td><td>duration 5 s, iterations 1, warmup 0</td>" in settings
    assert "None" not in settings and "True" not in settings
    assert "<h2>Node failures</h2>" not in page


def test_sweep_plot_draws_each_points_min_max_of_its_rounds() -> None:
    """A sweep point is the median of its rounds: its min-max is drawn with it, not only
    given in the table (issue 21: "the spread ... in the table, the JSON and the page")."""
    from matplotlib.figure import Figure

    drawn: list[tuple] = []
    real = Figure.add_subplot

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        axes = real(self, *args, **kwargs)
        errorbar = axes.errorbar

        def noted(x, y, yerr=None, **kw):  # type: ignore[no-untyped-def]
            drawn.append((list(x), list(y), yerr))
            return errorbar(x, y, yerr=yerr, **kw)

        axes.errorbar = noted
        return axes

    import pytest

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "add_subplot", spy)
        svg = plots.sweep(
            "write_type", {"write": [("A", 10.0, (8.0, 13.0)), ("B", 20.0, (19.0, 20.5))]}
        )
    assert svg is not None and drawn, "no range drawn"
    [(xs, ys, yerr)] = drawn
    assert xs == [0, 1] and ys == [10.0, 20.0]
    assert [list(v) for v in yerr] == [[2.0, 1.0], [3.0, 0.5]]  # below, above each median
