"""``fab history --csv`` read back by its consumer, Apache Otava: 12 synthetic runs of one
benchmark through the real History, the write throughput halved from run 7 on, exported
with the real task, then ``otava analyze`` (from .venv-otava, which the Makefile makes from
requirements-otava.txt) with the otava.yaml docs/history.md shows must name run 7."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from parbench import tasks as fabfile
from parbench.controller.analysis.history import History

from .fabtasks import context
from .test_history import make_run

ROOT = Path(__file__).resolve().parents[2]
OTAVA = ROOT / ".venv-otava" / "bin" / "otava"
MIB = 1024 * 1024

#: docs/history.md's otava.yaml and commands, verbatim (test_the_docs_show_what_runs_here)
OTAVA_YAML = """\
tests:
  parbench.write:
    type: csv
    file: write.csv
    time_column: time
    attributes: [run_id, config_hash, labels]
    metrics:
      aggregate_mib_s: {direction: 1}
      first_done_mib_s: {direction: 1}
      p99_ms: {direction: -1}
"""
ANALYZE = ["analyze", "--config-file", "otava.yaml", "parbench.write"]


@pytest.fixture
def otava() -> Path:
    """The ``otava`` executable of .venv-otava."""
    if not OTAVA.exists():
        message = f"{OTAVA} missing: make it with `make .venv-otava/.installed` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return OTAVA


def _history(tmp_path: Path) -> list[str]:
    """12 runs a day apart ending yesterday (Otava looks at the last 365 days), 200 MiB/s
    then 100 from run 7, a little noise; run 4's first-done figure missing (a summary
    without one). Their run ids, oldest first."""
    start = time.time() - 13 * 86400
    runs = []
    for i in range(12):
        aggregate = (200.0 if i < 6 else 100.0) + (i % 3) - 1
        run = make_run(tmp_path, aggregate * MIB, {"build": str(100 + i)})
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + i * 86400))
        run.dir.update_doc("run.json", {"created": created})
        if i == 3:
            summary = run.dir.read_doc("summary.json")
            summary["write"]["first_done"] = None
            run.dir.update_doc("summary.json", {"write": summary["write"]})
        runs.append(run)
    with History(tmp_path / "results" / "history.sqlite") as db:
        for run in runs:
            db.record(run.dir)
    return [run.run_id for run in runs]


def _otava(otava: Path, cwd: Path, *extra: str) -> str:
    done = subprocess.run(
        [str(otava), *ANALYZE, *extra], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr, done.stderr  # a bad cell: logged, exit 0, no analysis
    return done.stdout


def test_otava_finds_the_step_in_the_history_csv(tmp_path: Path, otava: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run_ids = _history(tmp_path)
    capsys.readouterr()
    fabfile.history_(context(tmp_path), csv=True, phase="write")  # > write.csv
    (tmp_path / "write.csv").write_text(capsys.readouterr().out)
    (tmp_path / "otava.yaml").write_text(OTAVA_YAML)

    table = _otava(otava, tmp_path).splitlines()  # docs/history.md's command
    rows = [next(n for n, line in enumerate(table) if run in line) for run in run_ids]
    assert rows == sorted(rows)  # every run read, oldest first
    between = table[rows[5] + 1 : rows[6]]
    assert any("-50.0%" in line for line in between), "\n".join(table)
    assert all("%" not in line for line in table[: rows[5]] + table[rows[6] :])

    (found,) = json.loads(_otava(otava, tmp_path, "--output", "json"))["parbench.write"]
    assert found["attributes"]["run_id"] == run_ids[6]
    assert found["attributes"]["labels"] == "build=106;cluster=lab"
    changes = {c["metric"]: c for c in found["changes"]}
    aggregate = changes["aggregate_mib_s"]
    assert aggregate["index"] == 6
    assert float(aggregate["mean_before"]) == 200.0 and float(aggregate["mean_after"]) == 100.0


def test_the_docs_show_what_runs_here() -> None:
    page = (ROOT / "docs" / "history.md").read_text()
    assert OTAVA_YAML in page
    assert "$ fab history --csv --phase write > write.csv\n" in page
    assert f"$ otava {' '.join(ANALYZE)}\n" in page
