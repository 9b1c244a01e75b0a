"""One fleet per ``fab`` command (controller/nodes/fleet.py): a chained ``write read
verify`` (and a sweep's runs) probe and push each node once; the fleet closes its
locks, then its agents, then its connections. Fake nodes: the probe's session and the
node's commands answer in this process (tests/unit/test_orchestration.py's world)."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from parbench.controller import commands
from parbench.controller.nodes import push as pushing
from parbench.controller.nodes.fleet import Fleet, current, using
from parbench.controller.run.inventory import Inventory, Node, load
from parbench.worker.protocol import LockReply, ProbeFacts, encode_line

from .test_orchestration import INVENTORY, FakeConnection, FakeSftp, World


def _held(request: str) -> str:
    """A node's answer to a lock request: every place asked for is held."""
    asked = json.loads(request)
    dst = None if asked.get("dst") is None else {"path": asked["dst"], "held": True}
    reply = {"workdir": {"path": asked["workdir"] + "/.parbench-lock", "held": True}, "dst": dst}
    return encode_line(LockReply(reply)) + "\n"


class ProbeSession:
    """The probe's session on a fake node: answers its workdir's lock; declines to
    become the agent (the node's phases then run over sessions of their own)."""

    def __init__(self) -> None:
        self.said = ""

    def send(self, line: str) -> None:
        self.said = _held(line.split(" ", 1)[1]) if line.startswith("lock ") else ""

    def readline(self) -> str:
        return self.said

    def finish(self) -> tuple[int, str]:
        return 0, ""

    def abandon(self) -> None:
        pass


class NodeConnection(FakeConnection):
    """A fake node that also takes the push's files, its runtime and its locks."""

    def put(self, local: str, remote: str) -> None:
        self.world.note(self.node, "put", remote)

    def sftp(self) -> FakeSftp:
        sftp = FakeSftp(self.world, self.node)
        sftp.posix_rename = lambda old, new: None  # type: ignore[attr-defined]
        return sftp

    def run(self, command: str, **kwargs):  # type: ignore[no-untyped-def]
        if "worker.bootstrap" in command:
            self.world.note(self.node, "bootstrap")
            return SimpleNamespace(stdout="", stderr="", exited=0)
        if command.startswith("umask 077 && mkdir -p -- "):  # a subpackage's folder
            self.world.note(self.node, "mkdir")
            return SimpleNamespace(stdout="", stderr="", exited=0)
        if " -m worker generate " in command:
            words = shlex.split(command)
            self.world.note(self.node, "generate", words[words.index("--bytes") + 1])
            return SimpleNamespace(stdout="", stderr="", exited=0)
        if " -m worker lock " in command:
            self.world.note(self.node, "lock")
            return SimpleNamespace(stdout=_held(shlex.split(command)[-1]), stderr="", exited=0)
        return super().run(command, **kwargs)


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Each node's probes, counted (a push probes each node it pushes, once)."""
    counted: Counter = Counter()

    def probe_node(conn, node: Node, asked: list[str]):  # type: ignore[no-untyped-def]
        counted[node.id] += 1
        facts = ProbeFacts("vm-" + node.id, "linux", (3, 11), {}, (), None, node.id, (1, 1))
        return facts, 0.002, 0.001, ProbeSession()

    monkeypatch.setattr(pushing, "probe_node", probe_node)
    monkeypatch.setattr(pushing, "ensure_wheels", lambda: [])
    return counted


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World()
    with using(Fleet(connect=lambda inventory, node: NodeConnection(world, node.id))):
        yield world


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


def test_a_chained_write_read_verify_probes_and_pushes_each_node_once(
    world: World, probes: Counter, inventory: Inventory, tmp_path: Path, capsys
) -> None:
    run = current().runs.start(inventory, tmp_path / "results")
    commands.write(run)
    commands.read(run)
    commands.verify(run)
    assert probes == {"n0": 1, "n1": 1}
    copied = Counter(e[0] for e in world.log if e[1] == "put")
    assert copied["n0"] == copied["n1"] > 0  # the first push copied; the later ones nothing
    assert Counter(e[0] for e in world.log if e[1] == "bootstrap") == {"n0": 1, "n1": 1}
    said = capsys.readouterr().out
    # the push is said once per command, for all nodes on one line
    assert said.count("2 nodes pushed: ") == 1 and "[n0]" not in said
    hosts = json.loads((run.path / "hosts.json").read_text())  # what the push measured
    assert hosts["n0"]["clock_offset"] == 0.002 and hosts["n0"]["uploaded"] == copied["n0"]


def test_a_sweeps_runs_reuse_the_pushed_nodes_and_a_failed_node_is_probed_again(
    world: World, probes: Counter, inventory: Inventory, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    commands.write(current().runs.start(inventory, root))
    commands.write(current().runs.start(inventory, root))  # another run, the same nodes and files
    assert probes == {"n0": 1, "n1": 1}

    def lost(node: str, request, kwargs) -> None:  # type: ignore[no-untyped-def]
        if node == "n1":
            raise OSError("the connection dropped")

    world.behaviour = lost
    with pytest.raises(commands.BenchFailure):
        commands.write(current().runs.start(inventory, root))
    world.behaviour = lambda node, request, kwargs: None
    commands.write(current().runs.start(inventory, root))
    assert probes == {"n0": 1, "n1": 2}


def test_a_push_that_brings_something_new_probes_again(
    world: World, probes: Counter, inventory: Inventory, tmp_path: Path
) -> None:
    commands.clean(inventory)  # no reference data
    commands.push_all(inventory)  # the reference too: something new
    commands.push_all(inventory)
    assert probes == {"n0": 2, "n1": 2}


def test_data_generated_on_the_nodes_is_made_once_and_again_after_clean_data(
    world: World, probes: Counter, tmp_path: Path
) -> None:
    (tmp_path / "inv.yaml").write_text(INVENTORY.replace("data: ref.txt", "data: 4096"))
    inventory = load(tmp_path / "inv.yaml")
    root = tmp_path / "results"
    commands.write(current().runs.start(inventory, root))
    commands.clean(inventory)  # storage only: the generated data stays
    commands.write(current().runs.start(inventory, root))
    assert probes == {"n0": 1, "n1": 1}
    commands.clean(inventory, data=True)  # the generated data deleted on the nodes
    commands.write(current().runs.start(inventory, root))  # probed again, the data made again
    assert probes == {"n0": 2, "n1": 2}
    assert Counter(e[0] for e in world.log if e[1] == "generate") == {"n0": 2, "n1": 2}


def test_the_fleet_gives_back_the_locks_then_ends_the_agents_then_closes_connections(
    inventory: Inventory,
) -> None:
    done: list[str] = []
    conn = SimpleNamespace(open=list, is_connected=True, close=lambda: done.append("conn"))
    fleet = Fleet(connect=lambda inv, node: conn)
    fleet.connections.get(inventory, inventory.nodes[0])
    fleet.locks["r1"] = SimpleNamespace(release=lambda: done.append("locks"))  # type: ignore[assignment]
    fleet.agents.close = lambda: done.append("agents")  # type: ignore[method-assign]
    fleet.close()
    fleet.close()  # once
    assert done == ["locks", "agents", "conn"]


def test_a_chained_write_read_verify_writes_hosts_json_once_and_never_reads_it(
    world: World, probes: Counter, inventory: Inventory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The push's facts (clock offsets, round trips) reach the phase loop through the
    fleet: hosts.json is saved once for the command, and never read back."""
    import os

    counted: Counter = Counter()
    os_replace, read_text = os.replace, Path.read_text

    def replacing(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        counted["written"] += Path(dst).name == "hosts.json"
        return os_replace(src, dst, *args, **kwargs)

    def reading(self: Path, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        counted["read"] += self.name == "hosts.json"
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replacing)
    monkeypatch.setattr(Path, "read_text", reading)
    run = current().runs.start(inventory, tmp_path / "results")
    commands.write(run)
    commands.read(run)
    commands.verify(run)
    assert (counted["written"], counted["read"]) == (1, 0)
    hosts = json.loads(read_text(run.path / "hosts.json"))
    assert set(hosts) == {"n0", "n1", "schema"} and hosts["n1"]["clock_error"] == 0.001


def test_a_sweep_over_sizes_probes_each_node_once_and_makes_every_size_there(
    world: World, probes: Counter, inventory: Inventory, tmp_path: Path
) -> None:
    commands.sweep(inventory, {"size": ["4KiB", "8KiB"]}, ["write"], tmp_path / "results")
    assert probes == {"n0": 1, "n1": 1}
    made = [(e[0], e[2]) for e in world.log if e[1] == "generate"]
    assert sorted(made) == [(n, s) for n in ("n0", "n1") for s in ("4096", "8192")]
