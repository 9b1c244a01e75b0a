"""The console at scale, counted on what a real chain prints (fake nodes: the push, the
barrier, the records and the lines a worker prints, all in this process): one block per
phase whatever the number of nodes and clients; a cause of failure adds one line, its
nodes listed compactly; verify's bad files a line per status and cause; node and
client lines only at ``--verbose``; the push said once per command."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from parbench.controller import commands
from parbench.controller.nodes import push as pushing
from parbench.controller.nodes.fleet import Fleet, current, using
from parbench.controller.output import console
from parbench.controller.output.progress import Board
from parbench.controller.run import say
from parbench.controller.run.inventory import Inventory, Node, load
from parbench.worker.protocol import ExitCode, PhaseRequest, ProbeFacts, Record, encode_line
from parbench.worker.results import ClientResult

from .test_fleet import NodeConnection, ProbeSession
from .test_orchestration import World
from .test_progress import Clock, fields, screen


class Talking(NodeConnection):
    """A fake node whose worker prints what a real one does: a ready line, a line per
    client and its node's summary, ending in a long path."""

    def run(self, command: str, **kwargs):  # type: ignore[no-untyped-def]
        result = super().run(command, **kwargs)
        out = kwargs.get("out_stream")
        if out is not None and " -m worker run " in command:
            clients = result.stdout.count("\n") or 1
            out.write(f"parbench-ready {self.node}\n")
            for c in range(clients):
                out.write(f"{self.node}/{c} write /bench/{self.node}/{c}  5 B  1.00 s  ok\n")
            out.write(
                f"write {self.node}: {clients}/{clients} ok; records: /w/{self.node}/x.jsonl\n"
            )
        return result


def _inventory(tmp_path: Path, nodes: int, clients: int) -> Inventory:
    (tmp_path / "ref.txt").write_text("12345")
    listed = "\n".join(f"  - {{id: n{k}, host: h{k}, workdir: /w/n{k}}}" for k in range(nodes))
    (tmp_path / "inv.yaml").write_text(
        f"defaults: {{clients: {clients}, dst: /bench, data: ref.txt}}\nnodes:\n{listed}\n"
    )
    return load(tmp_path / "inv.yaml")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    def probe_node(conn, node: Node, asked: list[str]):  # type: ignore[no-untyped-def]
        python = (3, 9) if node.id == "n2" else (3, 11)  # one node differs
        facts = ProbeFacts("vm-" + node.id, "linux", python, {}, (), None, node.id, (1, 1))
        return facts, -0.00001, 0.00002, ProbeSession()  # -0.01 ms: "0.0", never "-0.0"

    monkeypatch.setattr(pushing, "probe_node", probe_node)
    monkeypatch.setattr(pushing, "ensure_wheels", lambda: [])
    monkeypatch.setattr(say, "_sink", console)  # as fabfile.py installs it
    world = World()
    with using(Fleet(connect=lambda inventory, node: Talking(world, node.id))):
        yield world


def _level(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    monkeypatch.setattr(console, "_level", level, raising=False)


def _chain(inventory: Inventory, root: Path, capsys) -> list[str]:  # type: ignore[no-untyped-def]
    """``fab push write read verify``: the lines it printed, stdout and stderr."""
    capsys.readouterr()
    commands.push_all(inventory)
    run = current().runs.start(inventory, root)
    commands.write(run)
    commands.read(run)
    commands.verify(run)
    said = capsys.readouterr()
    return (said.out + said.err).splitlines()


def _write(inventory: Inventory, root: Path, capsys) -> list[str]:  # type: ignore[no-untyped-def]
    """``fab write`` (nodes pushed already): the lines it printed (fab's exit message
    on a failure, one more line, is not counted)."""
    capsys.readouterr()
    with contextlib.suppress(commands.BenchFailure):
        commands.write(current().runs.start(inventory, root))
    said = capsys.readouterr()
    return (said.out + said.err).splitlines()


def test_a_chain_on_64_nodes_prints_at_most_60_lines(world, tmp_path, capsys) -> None:
    lines = _chain(_inventory(tmp_path, 64, 2), tmp_path / "results", capsys)
    assert len(lines) <= 60, "\n".join(lines)
    assert not any(re.match(r"\[n\d+\]", line) for line in lines)  # no node's own lines
    assert sum("nodes pushed" in line for line in lines) == 1  # once per command
    assert any("python 3.11 (n2: 3.9)" in line for line in lines)
    assert not any("-0.0" in line for line in lines)


def _failing(world, tmp_path, capsys, cause) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """``fab write`` on 64 nodes, calm, then with n0..n9 failing with ``cause(k)``."""
    inventory, root = _inventory(tmp_path, 64, 2), tmp_path / "results"
    commands.push_all(inventory)
    calm = _write(inventory, root, capsys)

    def lost(node: str, request, kwargs) -> None:  # type: ignore[no-untyped-def]
        if int(node[1:]) < 10:
            raise OSError(cause(int(node[1:])))

    world.behaviour = lost
    return calm, _write(inventory, root, capsys)


def test_a_failure_of_one_cause_on_10_nodes_adds_at_most_2_lines(world, tmp_path, capsys) -> None:
    # the same error, naming each node's own id, host, path and numbers
    calm, failing = _failing(
        world, tmp_path, capsys,
        lambda k: f"n{k}: connection to h{k}:39999 dropped after {k + 1}.5 s at /w/n{k}/x",
    )  # fmt: skip
    assert len(failing) <= len(calm) + 2, "\n".join(failing)
    named = [line for line in failing if "dropped after" in line]
    assert named == [
        "  n[0-9] (10 nodes) write failed, e.g. n0 (root@h0:22): OSError: n0: connection to"
        " h0:39999 dropped after 1.5 s at /w/n0/x"
    ]


def test_ten_causes_on_10_nodes_add_at_most_10_lines(world, tmp_path, capsys) -> None:
    words = ["refused", "reset", "closed", "denied", "lost"]
    words += ["gone", "broken", "busy", "full", "stale"]
    calm, failing = _failing(world, tmp_path, capsys, lambda k: f"connection {words[k]}")
    assert len(failing) <= len(calm) + 10, "\n".join(failing)
    for k, word in enumerate(words):
        assert f"  n{k} (root@h{k}:22) write failed: OSError: connection {word}" in failing


def test_verbose_names_each_failed_node_on_a_line(world, tmp_path, capsys, monkeypatch) -> None:
    _level(monkeypatch, "verbose")
    _, failing = _failing(world, tmp_path, capsys, lambda k: "the connection dropped")
    assert sum(bool(re.match(rf"  n{k} +root@h{k}:22 +write", x)) for x in failing
               for k in range(10)) == 10  # fmt: skip


def _spoiled(conn: Talking, command: str, result):  # type: ignore[no-untyped-def]
    """What a fake node's verify finds when world.files["spoiled"]: each file missing."""
    if " -m worker run " not in command or not conn.world.files.get("spoiled"):
        return result
    words = shlex.split(command)
    request = PhaseRequest.from_json(conn.world.files[words[words.index("run") + 1]])
    if not request.phase.startswith("verify"):
        return result
    told = conn.world.files[request.out].splitlines()
    found = [ClientResult.from_dict(json.loads(x)) for x in told]
    records = [
        replace(r, status="missing", bytes=0,
                error=f"{r.host}: {r.path}: no such file: {r.path} (errno 2)")
        for r in found
    ]  # fmt: skip
    conn.world.files[request.out] = "".join(r.to_json() + "\n" for r in records)
    told = "".join(encode_line(Record(r)) + "\n" for r in records)
    return SimpleNamespace(stdout=told, stderr="", exited=int(ExitCode.NOT_OK))


def test_1600_bad_files_in_verify_are_a_few_lines(world, tmp_path, capsys, monkeypatch) -> None:
    talk = Talking.run
    monkeypatch.setattr(Talking, "run", lambda c, cmd, **kw: _spoiled(c, cmd, talk(c, cmd, **kw)))
    inventory, root = _inventory(tmp_path, 64, 25), tmp_path / "results"
    commands.push_all(inventory)
    run = current().runs.start(inventory, root)
    commands.write(run)
    world.files["spoiled"] = "yes"
    capsys.readouterr()
    with pytest.raises(commands.BenchFailure):
        commands.verify(run)
    said = capsys.readouterr()
    lines = (said.out + said.err).splitlines()
    assert len(lines) <= 8, "\n".join(lines)
    assert "verify-write: 0 of 1600 files ok, 1600 not ok (1600 missing)" in lines
    assert (
        "  missing: 1600 files on n[0-63] (64 nodes), e.g. n0/0 /bench/n0/0:"
        " no such file: /bench/n0/0 (errno 2)" in lines
    )
    _level(monkeypatch, "verbose")  # every file, a row each
    with pytest.raises(commands.BenchFailure):
        commands.verify(run)
    said = capsys.readouterr()
    assert sum("/bench/" in line for line in said.out.splitlines()) >= 1600


def test_the_block_of_a_phase_is_as_high_at_100_x_16_as_at_3_x_2(world, tmp_path, capsys) -> None:
    heights = []
    for nodes, clients in ((3, 2), (100, 16)):
        place = tmp_path / f"{nodes}x{clients}"
        place.mkdir()
        inventory = _inventory(place, nodes, clients)
        commands.push_all(inventory)
        lines = _write(inventory, place / "results", capsys)
        heights.append(len(lines))
    assert heights[0] == heights[1]


def test_verbose_prints_every_node_and_client_line_and_quiet_the_headline(
    world, tmp_path, capsys, monkeypatch
) -> None:
    inventory, root = _inventory(tmp_path, 3, 2), tmp_path / "results"
    _level(monkeypatch, "verbose")
    lines = _chain(inventory, root, capsys)
    assert (
        "[n0] parbench-ready n0" in lines
        and "[n1] n1/1 write /bench/n1/1  5 B  1.00 s  ok" in lines
    )
    assert sum(line.startswith("[n0] vm-n0 python 3.11: ") for line in lines) == 1
    copied = len(pushing.artifacts(inventory, [], data=False)) + 1  # the worker, the data
    assert (
        f"[n0] vm-n0 python 3.11: {copied} file(s) copied, runtime installed;"
        " clock offset 0.0 ms (±0.0)" in lines
    )
    assert any(line.startswith("  n0/0    <-  ") for line in lines)  # the pairing table
    _level(monkeypatch, "quiet")
    quiet = _write(inventory, root, capsys)
    # quiet: the run, the headline and what qualifies it (a warning), nothing else
    assert [line for line in quiet if "short_phase_seconds" in line], quiet
    quiet = [line for line in quiet if "short_phase_seconds" not in line]
    assert (
        len(quiet) == 2
        and quiet[0].startswith("run ")
        and quiet[1].startswith("write: ")
        and "aggregate" in quiet[1]
    )


def test_the_live_progress_of_many_nodes_is_one_block(monkeypatch) -> None:
    out, clock = io.StringIO(), Clock()
    board = Board(out, tty=True, clock=clock)
    for k in range(64):
        clock.now += 1.0  # each update drawn
        board.update(fields(f"n{k}", 2 if k else 0, 10 * 1024 * 1024, 2))
    shown = screen(out.getvalue())
    assert len(shown) == 2, shown
    assert "64 nodes" in shown[1] and "furthest behind: n0 0/2" in shown[1]
