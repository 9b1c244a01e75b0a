"""Each iteration's records are appended to the nodes' records files, not rewritten with
every earlier iteration's (issue 17): saving an iteration costs the same after 20 as after
one; an append cut short leaves a torn last line that readers leave out, a report names,
and collect fetches again; a re-run of a phase starts clean."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from parbench.controller import commands, phases
from parbench.controller.run import outcomes
from parbench.controller.run.iterations import IterationPlan
from parbench.controller.run.outcomes import append_records

from .fabtasks import exit_of
from .test_orchestration import run, world  # noqa: F401 (fixtures)
from .test_report import WRITE

IO = Path("/proc/self/io")


def _written() -> int:
    """The bytes this process has passed to write(2) so far (Linux)."""
    fields = dict(line.split(": ") for line in IO.read_text().splitlines())
    return int(fields["wchar"])


@pytest.mark.skipif(not IO.exists(), reason="counts the bytes written through /proc/self/io")
def test_saving_an_iteration_writes_as_many_bytes_after_twenty_iterations_as_after_one(
    world, run, monkeypatch  # noqa: F811
) -> None:  # fmt: skip
    """Bytes written by each iteration's save (a count, not a time): flat in the number
    of iterations before it, where rewriting every earlier one grows with it."""
    saves: list[int] = []
    save_nodes = phases.save_nodes

    def counted(run_dir, result) -> None:
        before = _written()
        save_nodes(run_dir, result)
        saves.append(_written() - before)

    monkeypatch.setattr(phases, "save_nodes", counted)
    commands.write(run, IterationPlan(iterations=1))
    [one] = saves
    saves.clear()
    commands.write(run, IterationPlan(iterations=20))  # the same phase again, from scratch
    assert len(saves) == 20 and one > 0
    assert max(saves) <= 1.25 * one, f"bytes per iteration's save: {saves} (one: {one})"
    on_disk = sum(p.stat().st_size for p in run.path.glob("nodes/*/write.jsonl"))
    assert sum(saves) < on_disk + 20 * one  # records written once, plus the logs


def test_a_re_run_of_a_phase_starts_clean(world, run) -> None:  # noqa: F811
    commands.write(run, IterationPlan(iterations=3))
    commands.write(run, IterationPlan(iterations=1))
    for node in ("n0", "n1"):
        assert [r.iteration for r in run.dir.node_records(node, "write")] == [0, 0]


def _tear(path: Path) -> None:
    """Cut the file in the middle of its last line, as a controller killed mid-append."""
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + (len(data) - last) // 2])


def test_a_torn_last_line_is_left_out_and_named_by_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from .test_history import make_run

    made = make_run(tmp_path, 100.0)
    records = made.dir.node_file("n0", "write.jsonl")
    append_records(records, WRITE[:2])
    _tear(records)
    assert [r.client for r in made.dir.records("write")] == [0]  # tolerated: left out
    damaged: list[str] = []
    assert [r.client for r in made.dir.node_records("n0", "write", damaged)] == [0]
    assert damaged == [
        f"{records}:2: torn last line (the controller stopped while saving it): "
        "`fab report --collect` fetches its iteration again from the node"
    ]
    stop = exit_of("report", tmp_path, run=made.run_id)
    assert "write: 1 node, 1 client" in capsys.readouterr().out  # the rest is shown
    assert stop.code == 1 and "\n" not in stop.message
    assert stop.message.startswith(f"failed: 1 damaged record(s) left out: {records}:2: torn")


def test_a_damaged_line_that_is_not_the_last_is_still_refused(tmp_path: Path) -> None:
    from parbench.controller.run.rundir import ResultsError

    from .test_history import make_run

    made = make_run(tmp_path, 100.0)
    records = made.dir.node_file("n0", "write.jsonl")
    append_records(records, WRITE[:2])
    records.write_text(records.read_text().replace("}\n", "\n", 1))
    with pytest.raises(ResultsError, match=r"write.jsonl:1: "):
        made.dir.records("write")


def test_collect_fetches_the_iteration_of_a_torn_last_line_again(world, run) -> None:  # noqa: F811
    commands.write(run, IterationPlan(iterations=2))
    path = run.path / "nodes" / "n1" / "write.jsonl"
    _tear(path)  # the controller was killed saving iteration 1 of n1
    assert [r.iteration for r in run.dir.node_records("n1", "write")] == [0, 0, 1]
    phases.collect(run.open(run.dir.root, run.run_id))  # a later command: `fab report --collect`
    assert [(r.iteration, r.client) for r in run.dir.node_records("n1", "write")] == [
        (0, 0), (0, 1), (1, 0), (1, 1)
    ]  # fmt: skip
    assert path.read_text().endswith("}\n")
    summary = json.loads((run.path / "summary.json").read_text())["write"]
    assert summary["ok"] == 8


def test_an_append_that_fails_is_cut_off(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "write.jsonl"
    append_records(path, WRITE[:1])
    before = path.read_bytes()
    write = os.write

    def half(fd: int, data) -> int:  # writes part, then the disk is full
        write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outcomes.os, "write", half)
    with pytest.raises(OSError):
        append_records(path, WRITE[1:3])
    assert path.read_bytes() == before
    monkeypatch.setattr(outcomes.os, "write", write)
    append_records(path, WRITE[1:2])
    assert path.read_text().count("\n") == 2 and path.read_text().endswith("}\n")


def test_an_append_is_whole_lines_fsynced(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    fsync = os.fsync
    monkeypatch.setattr(outcomes.os, "fsync", lambda fd: (synced.append(fd), fsync(fd)))
    path = tmp_path / "write.jsonl"
    append_records(path, WRITE[:2])
    append_records(path, WRITE[2:3])
    assert len(synced) == 2 and (path.stat().st_mode & 0o777) == 0o644
    assert [json.loads(line)["client"] for line in path.read_text().splitlines()] == [0, 1, 0]
