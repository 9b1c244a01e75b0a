"""``fab history --csv``: a row per run and phase, oldest first, with a time column and
metric columns (what Apache Otava's CSV importer and a spreadsheet take), read back with
the csv module (and pandas when it is installed)."""

from __future__ import annotations

import csv
import importlib.util
import io
from datetime import datetime
from pathlib import Path

from parbench import tasks as fabfile
from parbench.controller.analysis.history import History
from parbench.controller.output.historycsv import COLUMNS

from .fabtasks import context
from .test_history import make_run


def test_history_csv(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    first = make_run(tmp_path, 100 * 1024 * 1024, {"build": "41"})
    second = make_run(tmp_path, 200 * 1024 * 1024, {"build": "42"})
    summary = second.dir.read_doc("summary.json")
    too_short = "iteration 1 lasted 0.500 s < min_phase_seconds 1 s"
    summary["write"].update(files=8, wall_seconds=2.0, valid=False, invalid=[too_short])
    summary["write"]["short"] = True  # the summary's marker (controller/analysis/adequacy.py)
    summary["write"]["latency"]["file"].update(count=8, p50=700.0)
    second.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
    with History(tmp_path / "results" / "history.sqlite") as db:
        db.record(first.dir)
        db.record(second.dir)
    capsys.readouterr()

    fabfile.history_(context(tmp_path), csv=True)
    text = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    assert [r["run_id"] for r in rows] == [first.run_id, second.run_id]  # oldest first
    old, new = rows
    assert datetime.fromisoformat(new["time"].replace("Z", "+00:00")).tzinfo is not None
    assert (new["phase"], new["config_hash"]) == ("write", "c0ffee")
    assert new["labels"] == "build=42;cluster=lab"
    assert float(old["aggregate_mib_s"]) == 100.0 and float(new["aggregate_mib_s"]) == 200.0
    assert float(new["first_done_mib_s"]) == 180.0
    assert float(new["files_per_s"]) == 4.0 and old["files_per_s"] == "nan"
    assert float(new["p50_ms"]) == 0.7 and float(new["p99_ms"]) == 1.5
    assert (old["valid"], old["short"]) == ("1", "0")
    assert (new["valid"], new["short"]) == ("0", "1")

    if importlib.util.find_spec("pandas"):  # not in every venv: the csv module above is the check
        import pandas

        frame = pandas.read_csv(io.StringIO(text), parse_dates=["time"])
        assert list(frame["aggregate_mib_s"]) == [100.0, 200.0]


def test_history_csv_filters_and_keeps_stdout_for_the_csv(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    make_run(tmp_path, 1.0)
    fabfile.history_(context(tmp_path), csv=True, import_=True, phase="read")
    captured = capsys.readouterr()
    assert captured.out == ",".join(COLUMNS) + "\n"  # no read phase recorded: the header
    assert "history: recorded 1 run(s)" in captured.err
