"""``fab clean --data --runs``: the flags reach every node's clean request, with the runs
this process holds locks for kept (the worker's side: test_worker_clean.py)."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke import Context

from parbench import tasks as fabfile
from parbench.controller import commands, phases
from parbench.controller.nodes import locks, remote
from parbench.controller.nodes.fleet import Fleet
from parbench.controller.run.inventory import load
from parbench.worker.protocol import PhaseRequest, WorkdirClean

from .test_orchestration import INVENTORY, FakeSftp, World

HELD = "20260101T000000Z-aaaa"


class CleanConnection:
    """A node that answers a clean request, keeping what it was sent."""

    def __init__(self, world: World, node: str) -> None:
        self.world, self.node = world, node

    def open(self) -> None:
        pass

    def sftp(self) -> FakeSftp:
        return FakeSftp(self.world, self.node)

    def run(self, command: str, **kwargs) -> SimpleNamespace:
        words = shlex.split(command)
        request = PhaseRequest.from_json(self.world.files[words[words.index("run") + 1]])
        self.world.note(self.node, "clean", request.to_json())
        return SimpleNamespace(stdout="clean deleted /bench/n0\n", stderr="", exited=0)

    def close(self) -> None:
        pass


@pytest.fixture
def sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run commands.clean against fake nodes; the requests they got, by node."""
    world = World()
    monkeypatch.setattr(remote, "connect", lambda inv, node: CleanConnection(world, node.id))
    monkeypatch.setattr(phases, "push", lambda inv, run=None, data=True, held=None: list(inv.nodes))
    monkeypatch.setattr(locks, "hold", lambda inv, run_id, nodes: SimpleNamespace(release=list))
    monkeypatch.setattr(locks, "held_runs", lambda: (HELD,))
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    inventory = load(tmp_path / "inv.yaml")

    def clean(**flags) -> dict[str, PhaseRequest]:
        world.log.clear()
        commands.clean(inventory, **flags)
        return {e[0]: PhaseRequest.from_json(e[2]) for e in world.log if e[1] == "clean"}

    return clean


def test_the_flags_reach_every_nodes_request_keeping_the_held_runs(sent) -> None:
    requests = sent(data=True, runs=True)
    assert {node: r.workdir_clean for node, r in requests.items()} == {
        "n0": WorkdirClean("/w/n0", data=True, runs=True, keep=(HELD,)),
        "n1": WorkdirClean("/w/n1", data=True, runs=True, keep=(HELD,)),
    }
    assert sent(data=True)["n0"].workdir_clean == WorkdirClean("/w/n0", data=True, keep=(HELD,))
    assert sent()["n0"].workdir_clean is None  # plain fab clean: storage and copies only


def test_held_runs_are_those_whose_locks_this_process_holds(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = SimpleNamespace(id="n0")
    monkeypatch.setattr(
        fleet,
        "locks",
        {
            HELD: SimpleNamespace(nodes={"n0": node}, dst_node=node),
            "20260102T000000Z-bbbb": SimpleNamespace(nodes={}, dst_node=node),
            "20260103T000000Z-cccc": SimpleNamespace(nodes={}, dst_node=None),  # given back
        },
    )
    assert locks.held_runs() == (HELD, "20260102T000000Z-bbbb")


def test_fab_clean_takes_data_and_runs_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple] = []
    monkeypatch.setattr(fabfile, "_inventory", lambda c, inventory: "inventory")
    monkeypatch.setattr(fabfile, "_output", lambda c, verbose=False, quiet=False: None)
    monkeypatch.setattr(
        fabfile.commands, "clean", lambda inv, data=False, runs=False: asked.append((data, runs))
    )
    fabfile.clean(Context(), data=True, runs=True)
    fabfile.clean(Context())
    assert asked == [(True, True), (False, False)]
    assert {"data", "runs"} <= set(fabfile.clean.help)
    assert "generated" in fabfile.clean.help["data"] and "runs/" in fabfile.clean.help["runs"]
