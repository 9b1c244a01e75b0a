"""The run history in SQLite: schema version and migration, recording and the trend,
import of older runs, concurrent writers, a damaged or newer database refused clearly."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from parbench.controller.analysis import history
from parbench.controller.analysis.history import SCHEMA_VERSION, History, HistoryError, import_runs
from parbench.controller.output.report import history_table
from parbench.controller.run.inventory import load
from parbench.controller.run.outcomes import keep_cluster
from parbench.controller.run.run import Run
from parbench.worker.results import ClientResult

from .fabtasks import exit_of

INVENTORY = "defaults: {data: ref.txt}\nlabels: {cluster: lab}\nnodes:\n  - {id: n0, host: h0}\n"


def make_run(tmp_path: Path, aggregate: float, labels: dict | None = None) -> Run:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    run = Run.start(load(tmp_path / "inv.yaml"), tmp_path / "results", labels)
    figures = {
        "phase": "write", "clients": 2, "ok": 2, "errors": [], "bytes": 10,
        "wall_seconds": 1.0, "aggregate_throughput": aggregate, "config_hash": "c0ffee",
        "config": {"phase": "write"}, "valid": True, "invalid": [],
        "per_client": {"median": aggregate / 2}, "first_done": {"throughput": aggregate * 0.9},
        "latency": {"file": {"p99": 1500.0}},
        "iterations": {
            "warmup": [{"iteration": 0, "aggregate_throughput": 1.0}],
            "measured": [
                {"iteration": 1, "aggregate_throughput": aggregate - 1},
                {"iteration": 2, "aggregate_throughput": aggregate + 1},
            ],
        },
    }  # fmt: skip
    run.dir.update_doc("summary.json", {"write": figures, "verify-write": {"ok": 2}})
    return run


def test_a_new_database_has_the_current_schema(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as db:
        assert db.version == SCHEMA_VERSION
        mode = db.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_record_and_the_trend(tmp_path: Path) -> None:
    first = make_run(tmp_path, 100.0)
    second = make_run(tmp_path, 200.0, {"build": "7"})
    with History(tmp_path / "h.sqlite") as db:
        assert db.record(first.dir) == ["write"]  # verify phases are not measurements
        db.record(second.dir)
        db.record(second.dir)  # again: replaced, not doubled
        entries = db.entries()
        assert [e.aggregate for e in entries] == [100.0, 200.0]
        latest = entries[-1]
        assert latest.labels == {"cluster": "lab", "build": "7"}
        assert latest.samples == (199.0, 201.0) and latest.p99_us == 1500.0
        assert latest.first_done == 180.0 and latest.client_median == 100.0
        assert [e.run_id for e in db.entries(labels={"build": "7"})] == [second.run_id]
        assert [e.run_id for e in db.entries(last=1)] == [second.run_id]
        assert db.entries(phase="read") == [] and len(db.entries(config_hash="c0ffee")) == 2
        assert latest.cluster is None  # no node's proxy told its version


def test_the_clusters_version_is_recorded_and_shown(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    keep_cluster(run.dir, [_told("n0", "alluxio 2.9.6"), _told("n1", None)])
    keep_cluster(run.dir, [_told("n1", "alluxio 2.9.6")])  # a later phase adds n1
    assert run.dir.read_doc("cluster.json") == {
        "nodes": {"n0": "alluxio 2.9.6", "n1": "alluxio 2.9.6"}, "version": "alluxio 2.9.6"
    }  # fmt: skip
    with History(tmp_path / "h.sqlite") as db:
        db.record(run.dir)
        (entry,) = db.entries()
    assert entry.cluster == "alluxio 2.9.6"
    assert "ok  alluxio 2.9.6  cluster=lab" in history_table([entry])


def _told(node: str, version: str | None) -> ClientResult:
    return ClientResult(
        run_id="r", phase="write", node=node, client=0, host="h", backend="alluxio", path="/p",
        cluster=version,
    )  # fmt: skip


def test_older_runs_are_imported(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, 10.0 * i) for i in (1, 2)]
    (tmp_path / "results" / "stray").mkdir()  # not a run: no run.json
    with History(tmp_path / "h.sqlite") as db:
        done, skipped = import_runs(db, tmp_path / "results")
        assert sorted(done) == sorted(r.run_id for r in runs) and skipped == []
        assert len(db.entries()) == 2


def _record(args: tuple[str, str, str]) -> None:
    database, root, run_id = args
    from parbench.controller.run.rundir import RunDir

    with History(Path(database)) as db:
        db.record(RunDir.open(Path(root), run_id))


def test_concurrent_writers_both_land(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, float(i)) for i in range(1, 7)]
    database = str(tmp_path / "h.sqlite")
    History(Path(database)).close()
    jobs = [(database, str(tmp_path / "results"), r.run_id) for r in runs]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_record, jobs)
    with History(Path(database)) as db:
        assert len(db.entries()) == 6


def test_a_damaged_or_newer_database_is_refused_clearly(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="damaged.sqlite: not an SQLite database"):
        History(damaged)
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="is newer than this parbench's"):
        History(newer)


def test_remember_says_why_and_leaves_the_run_alone(tmp_path: Path) -> None:
    run = make_run(tmp_path, 1.0)
    (tmp_path / "results" / "history.sqlite").write_bytes(b"garbage" * 200)
    before = sorted(p.name for p in run.path.iterdir())
    said = history.remember(run.dir)
    assert said is not None and said.startswith("not recorded in the history: history ")
    assert sorted(p.name for p in run.path.iterdir()) == before


def test_an_unknown_phase_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    stop = exit_of("history_", tmp_path, phase="wrte")
    assert (stop.code, stop.message) == (
        2,
        "error: --phase wrte: expected one of write, read, meta (the phases the history keeps)",
    )
