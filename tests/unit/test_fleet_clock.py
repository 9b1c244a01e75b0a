"""The clock offset of a node is measured again over its agent before each task of a
command (controller/nodes/fleet.py's ``ready``), not taken from the first push: a sweep,
``nightly`` or a long chain runs for hours while the nodes' clocks drift. Fake nodes
whose probe becomes an agent in this process; no SSH."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

import pytest

from parbench.controller import commands
from parbench.controller.nodes import fleet as fleet_module
from parbench.controller.nodes import push as pushing
from parbench.controller.nodes.fleet import Fleet, current, using
from parbench.controller.run.inventory import Inventory, Node, load
from parbench.worker.protocol import (
    AgentClock,
    AgentClockAsk,
    AgentDone,
    AgentReady,
    AgentStarted,
    BecomeAgent,
    Go,
    LockAsk,
    PhaseRequest,
    ProbeFacts,
    Ready,
    Record,
    RunAsk,
    Stop,
    decode_line,
    encode_line,
)
from parbench.worker.results import ClientResult

from .test_fleet import NodeConnection, _held
from .test_orchestration import INVENTORY, World


class Clocks:
    """Each fake node's clock: ours plus its skew (which the test moves)."""

    def __init__(self) -> None:
        self.skew: dict[str, float] = {"n0": 0.0, "n1": 0.0}
        self.asked: Counter = Counter()  # clock asks each agent answered
        self.goes: dict[str, list[float]] = {"n0": [], "n1": []}  # start times received
        self.probes: Counter = Counter()

    def now(self, node: str) -> float:
        return time.time() + self.skew[node]


class AgentSession:
    """A fake node's probe session that becomes its agent: answers the workdir's lock,
    its clock, and runs a phase (ready, then on ``go`` a record per client)."""

    def __init__(self, clocks: Clocks, node: str) -> None:
        self.clocks, self.node = clocks, node
        self.timeout: Optional[float] = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.request: Optional[PhaseRequest] = None
        self._lock = threading.Lock()

    def say(self, *msgs: object) -> None:
        for msg in msgs:
            self.lines.put(encode_line(msg) + "\n")  # type: ignore[arg-type]

    def send(self, text: str) -> None:
        with self._lock:
            for line in text.splitlines():
                self._one(line)

    def _one(self, line: str) -> None:
        asked = decode_line(line)
        if isinstance(asked, BecomeAgent):
            self.say(AgentReady())
        elif isinstance(asked, LockAsk):
            self.lines.put(_held(asked.request))
        elif isinstance(asked, AgentClockAsk):
            self.clocks.asked[self.node] += 1
            self.say(AgentClock(self.clocks.now(self.node)))
        elif isinstance(asked, RunAsk):
            self.request = PhaseRequest.from_json(asked.request)
            self.say(AgentStarted(), Ready(self.node))
        elif isinstance(asked, Go):
            self.clocks.goes[self.node].append(asked.at)
            self.say(*(Record(r) for r in self._records(asked.at)), AgentDone(0))
        elif isinstance(asked, Stop):
            self.say(AgentDone(130))
        else:
            self.lines.put(f"parbench worker: agent: no such request {line!r}\n")

    def _records(self, start: float) -> list[ClientResult]:
        request = self.request
        assert request is not None
        return [
            ClientResult(
                request.run_id, request.phase, self.node, t.client, self.node, "posix",
                t.path, bytes=5, start=start, end=start + 1.0, iteration=request.iteration,
                warmup=request.warmup,
            )
            for t in request.clients
        ]  # fmt: skip

    def readline(self) -> str:
        try:
            return self.lines.get(timeout=self.timeout or 30)
        except queue.Empty:
            raise TimeoutError("no line") from None

    def finish(self) -> tuple[int, str]:
        return 0, ""

    def abandon(self) -> None:
        self.lines.put("")


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Clocks:
    clocks = Clocks()

    def probe_node(conn, node: Node, asked: list[str]):  # type: ignore[no-untyped-def]
        clocks.probes[node.id] += 1
        facts = ProbeFacts("vm-" + node.id, "linux", (3, 11), {}, (), None, node.id, (1, 1))
        return facts, clocks.skew[node.id], 0.001, AgentSession(clocks, node.id)

    monkeypatch.setattr(pushing, "probe_node", probe_node)
    monkeypatch.setattr(pushing, "ensure_wheels", lambda: [])
    return clocks


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    with using(Fleet(connect=lambda inventory, node: NodeConnection(world, node.id))):
        yield world


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(
        INVENTORY.replace("data: ref.txt", "data: ref.txt, start_delay: 0.2")
    )
    return load(tmp_path / "inv.yaml")


def _start_on_our_clock(clocks: Clocks, node: str, at: float) -> float:
    return at - clocks.skew[node]


def test_the_second_task_of_a_chain_follows_a_node_s_clock_that_moved(
    world: World, clocks: Clocks, inventory: Inventory, tmp_path: Path
) -> None:
    run = current().runs.start(inventory, tmp_path / "results")
    commands.write(run)
    [n0_write], [n1_write] = clocks.goes["n0"], clocks.goes["n1"]
    assert abs(_start_on_our_clock(clocks, "n0", n0_write) - n1_write) < 0.05  # one start
    clocks.skew["n0"] += 0.5  # n0's clock drifts (or is stepped) between the tasks
    commands.read(run)
    n0_read, n1_read = clocks.goes["n0"][-1], clocks.goes["n1"][-1]
    # n0 starts with n1 on our clock: the offset sent with its start follows its clock
    assert abs(_start_on_our_clock(clocks, "n0", n0_read) - n1_read) < 0.05
    assert clocks.asked["n0"] > 0 and clocks.probes == {"n0": 1, "n1": 1}  # no probe
    hosts = json.loads((run.path / "hosts.json").read_text())
    assert abs(hosts["n0"]["clock_offset"] - 0.5) < 0.05  # the run's facts: the new offset
    records = run.dir.records("read")
    assert {round(r.clock_offset, 1) for r in records if r.node == "n0"} == {0.5}


def test_a_node_without_an_agent_is_probed_again_once_its_offset_is_old(
    world: World, clocks: Clocks, inventory: Inventory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run = current().runs.start(inventory, tmp_path / "results")
    commands.write(run)
    current().agents.close()  # the agents are gone: the offset cannot be measured again
    monkeypatch.setattr(fleet_module, "CLOCK_MAX_AGE", 0.0)
    clocks.skew["n0"] += 0.5
    commands.read(run)  # probed again (the offset measured by the probe)
    assert clocks.probes == {"n0": 2, "n1": 2}
    n0_read, n1_read = clocks.goes["n0"][-1], clocks.goes["n1"][-1]
    assert abs(_start_on_our_clock(clocks, "n0", n0_read) - n1_read) < 0.05
