"""The console at scale, counted on what a real chain prints (fake nodes: the push, the
barrier, the records and the lines a worker prints, all in this process): one block per
phase whatever the number of nodes and clients; a failed node adds one line; node and
client lines only at ``--verbose``; the push said once per command."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Iterator

import pytest

from controller import commands
from controller.nodes import push as pushing
from controller.nodes.fleet import Fleet, current, using
from controller.output import console
from controller.output.progress import Board
from controller.run import say
from controller.run.inventory import Inventory, Node, load
from worker.protocol import ProbeFacts

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


def test_a_failure_on_10_nodes_adds_at_most_10_lines(world, tmp_path, capsys) -> None:
    inventory, root = _inventory(tmp_path, 64, 2), tmp_path / "results"
    commands.push_all(inventory)
    calm = _write(inventory, root, capsys)

    def lost(node: str, request, kwargs) -> None:  # type: ignore[no-untyped-def]
        if int(node[1:]) < 10:
            raise OSError("the connection dropped")

    world.behaviour = lost
    failing = _write(inventory, root, capsys)
    assert len(failing) <= len(calm) + 10, "\n".join(failing)
    named = [line for line in failing if "the connection dropped" in line]
    assert len(named) == 10 and all(
        re.match(r"  n\d \(root@h\d:22\) write failed: ", x) for x in named
    )


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
