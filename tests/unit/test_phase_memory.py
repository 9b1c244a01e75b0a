# ruff: noqa: F811
"""What a command did stays in memory and is saved once (issue 17): a failed verify prints
only what this attempt checked; a phase stopped by an exception leaves no earlier
attempt's summary or failures; a node thread that answers late is either saved and
counted or neither; a chained ``write read verify`` reads back nothing it wrote."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from parbench.controller import commands, phases
from parbench.controller.nodes import locks
from parbench.controller.nodes.fleet import current
from parbench.controller.phases import BenchFailure
from parbench.controller.run import outcomes, rundir
from parbench.controller.run.inventory import Inventory
from parbench.controller.run.iterations import IterationPlan
from parbench.controller.run.outcomes import NodeOutcome
from parbench.controller.run.run import Run

# the fixtures of the fake nodes, shared (a fixture's parameter redefines its import)
from .test_fleet import inventory, probes  # noqa: F401
from .test_fleet import world as fleet_world  # noqa: F401
from .test_orchestration import World, run, world  # noqa: F401


def _doc(run: Run, name: str) -> dict:
    return json.loads((run.path / name).read_text())


def test_a_verify_whose_push_failed_prints_no_earlier_table(world, run, monkeypatch, capsys):
    commands.write(run)
    commands.verify(run)
    assert "verify-write: all 4 files ok" in capsys.readouterr().out

    def push(inventory, run=None, data=True, held=None):  # every node unreachable now
        raise BenchFailure("no node could be prepared")

    monkeypatch.setattr(phases, "push", push)
    with pytest.raises(BenchFailure, match="no node could be prepared"):
        commands.verify(run)
    out = capsys.readouterr().out
    assert "verify-write" not in out and "files ok" not in out


def test_a_failed_verify_prints_the_records_of_this_attempt(world, run, capsys) -> None:
    commands.write(run)
    world.files["as-node"] = "n9"  # every node's verify records refused: none kept
    with pytest.raises(BenchFailure):
        commands.verify(run)
    out = capsys.readouterr().out
    assert "verify: no records" in out and "files ok" not in out


def test_a_phase_stopped_by_an_exception_leaves_no_earlier_summary_or_failures(
    world, run, monkeypatch
) -> None:
    world.files["as-node"] = "n9"  # a first attempt: both nodes failed
    with pytest.raises(BenchFailure):
        commands.write(run)
    assert _doc(run, "failures.json")["write"] and "write" in _doc(run, "summary.json")
    del world.files["as-node"]

    def renew(run_id: str) -> None:
        raise locks.LockFailed("the lease was lost")

    monkeypatch.setattr(locks, "renew", renew)
    with pytest.raises(locks.LockFailed):  # again: the lease lost before iteration 2
        commands.write(run, IterationPlan(iterations=2))
    assert [r.iteration for r in run.dir.records("write")] == [0, 0, 0, 0]  # the new ones
    assert "write" not in _doc(run, "summary.json")  # no verdict of the earlier attempt
    assert _doc(run, "failures.json")["write"] == []  # nor its failures
    assert "write" not in _doc(run, "bmf.json").get(run.run_id, {})  # the exports follow
    assert commands.summaries(run.dir)["write"].invalid == ()  # `fab report`: the records'


def test_records_of_a_late_thread_are_never_counted_without_being_written(
    world, run, monkeypatch
) -> None:
    unsaved = outcomes.Gathered.unsaved
    added: list[bool] = []

    def closing(self: outcomes.Gathered, close: bool = False):  # type: ignore[no-untyped-def]
        if close and not added:  # a thread given up answers just before the last save
            added.append(True)
            request = run.requests["write"]["n1"]
            kept = [o for o in self.close() if o.node == "n1"]
            self._closed = False  # type: ignore[attr-defined]
            self.add(NodeOutcome("n1", request, records=kept[0].records, fetched=True))
        return unsaved(self, close)

    monkeypatch.setattr(outcomes.Gathered, "unsaved", closing)
    commands.write(run)
    summary = _doc(run, "summary.json")["write"]
    assert summary["ok"] == len(run.dir.records("write"))


def test_a_chained_write_read_verify_reads_back_no_file_it_wrote(
    fleet_world: World, probes: Counter, inventory: Inventory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The command's results, plan and documents are kept in memory: nothing of the run
    folder is read back (every file there was written by this command)."""
    read: Counter = Counter()
    read_text, read_records = Path.read_text, rundir._read_records
    folder: list[Path] = []

    def note(path: Path) -> None:
        if folder and Path(path).is_relative_to(folder[0]) and Path(path).exists():
            read[str(Path(path).relative_to(folder[0]))] += 1

    def reading(self: Path, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        note(self)
        return read_text(self, *args, **kwargs)

    def records(path: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        note(path)
        return read_records(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", reading)
    monkeypatch.setattr(rundir, "_read_records", records)
    run = current().runs.start(inventory, tmp_path / "results")
    folder.append(run.path)
    commands.write(run)
    commands.read(run)
    commands.verify(run)
    assert dict(read) == {}
    summary = json.loads(read_text(run.path / "summary.json"))
    assert summary["write"]["ok"] == summary["read"]["ok"] == 4
    assert len(run.dir.records("verify-write")) == len(run.dir.records("verify-read")) == 4


def test_a_document_another_process_replaced_is_read_again(tmp_path: Path) -> None:
    """The documents a command wrote are read back from memory only while the file is
    the one it wrote: an update by another process (under the run's lock) is never lost."""
    mine = rundir.RunDir.create(tmp_path, "r1")
    mine.write_doc("summary.json", {"write": {"ok": 1}})
    other = rundir.RunDir(tmp_path, "r1")  # another process, same run
    other.update_doc("summary.json", {"read": {"ok": 2}})
    mine.update_doc("summary.json", {"verify-write": {"ok": 3}}, drop=["write"])
    assert set(json.loads((mine.path / "summary.json").read_text())) == {
        "read", "verify-write", "schema"
    }  # fmt: skip
    assert other.read_doc("summary.json") == {"read": {"ok": 2}, "verify-write": {"ok": 3}}
