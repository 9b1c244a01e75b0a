"""A node given up after Ctrl-C (its thread left inside the agent's phase) is forgotten
by the fleet: the locks are then given back over a session of their own, not through
the agent whose channel a reader still holds; and an ask of an agent is always bounded
by a timeout. Fake sessions and connections: no SSH, no node."""

from __future__ import annotations

import io
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from parbench.controller.nodes import agents as agents_module
from parbench.controller.nodes import stopping
from parbench.controller.nodes.agents import Agents
from parbench.controller.nodes.fleet import Fleet, current, on_nodes, using
from parbench.controller.nodes.locks import RunLocks
from parbench.controller.nodes.nodeprobe import SESSION_TIMEOUT
from parbench.controller.run.inventory import Inventory, load
from parbench.worker.protocol import AgentDone, AgentReady, encode_line

from .test_fleet import NodeConnection
from .test_orchestration import INVENTORY, World

#: how long a read without a timeout waits here before it says it would have hung
FOREVER = 8.0


class StalledAgent:
    """An agent's session over a network that has stalled: nothing comes back until
    the test puts a line (``resume``); closing it ends every read."""

    def __init__(self) -> None:
        self.timeout: Optional[float] = SESSION_TIMEOUT
        self.sent: list[str] = []
        self.lines: queue.Queue[str] = queue.Queue()
        self.lines.put(encode_line(AgentReady()) + "\n")  # to the hand-over
        self.abandoned = False
        self.hung = False  # a read without a timeout found nothing: it would never end
        self.read_timeouts: list[Optional[float]] = []

    def send(self, text: str) -> None:
        self.sent.append(text)

    def readline(self) -> str:
        timeout = self.timeout
        self.read_timeouts.append(timeout)
        try:
            return self.lines.get(timeout=FOREVER if timeout is None else timeout)
        except queue.Empty:
            self.hung = self.hung or timeout is None
            raise TimeoutError("no line") from None

    def resume(self, line: str) -> None:
        self.lines.put(line)

    def finish(self) -> tuple[int, str]:
        self.abandon()
        return 0, ""

    def abandon(self) -> None:
        self.abandoned = True
        for _ in range(4):  # every reader sees the end
            self.lines.put("")


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    fleet = Fleet(connect=lambda inventory, node: NodeConnection(world, node.id))
    with using(fleet):
        yield world


def test_a_node_given_up_after_ctrl_c_gives_its_locks_back_over_a_session_of_its_own(
    world: World, inventory: Inventory
) -> None:
    fleet = current()
    n0 = inventory.nodes[0]
    session = StalledAgent()
    assert fleet.agents.hand_over(n0, session)
    held = fleet.locks["r1"] = RunLocks(inventory, "r1")
    held.nodes[n0.id] = n0  # this process holds n0's workdir

    def phase(conn, node) -> object:  # type: ignore[no-untyped-def]
        out = io.StringIO()
        return fleet.agents.run(node, "/w/n0/r.json", "{}", out, out, [], None, 3600)

    def ctrl_c() -> None:  # while the phase runs there (the controller waiting for it)
        while not any(line.startswith("run ") for line in session.sent):
            time.sleep(0.01)
        time.sleep(0.1)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(stopping.Interrupted) as stop:
        on_nodes(inventory, "write", phase, [n0], grace=0.3)
    [given_up] = stop.value.outcomes
    assert given_up.failure is not None and "given up" in given_up.failure.cause
    assert session.abandoned  # forgotten at once: its reader ends, nothing more is sent
    # the node's network comes back: the phase's end is on the agent's channel
    session.resume(encode_line(AgentDone(130)) + "\n")
    closing = threading.Thread(target=fleet.close, daemon=True)
    closing.start()
    closing.join(FOREVER / 2)
    assert not closing.is_alive() and not session.hung, "the release hung on the agent"
    assert not any(line.startswith("lock ") for line in session.sent)  # not on its channel
    assert (n0.id, "lock") in world.log  # given back over a session of its own


def test_an_ask_is_bounded_by_the_session_timeout_whatever_a_phase_left_there(
    world: World, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agents_module, "SESSION_TIMEOUT", 0.2)
    agents, n0 = Agents(), inventory.nodes[0]
    session = StalledAgent()
    assert agents.hand_over(n0, session)
    session.timeout = None  # as a phase leaves it while it runs
    began = time.monotonic()
    assert agents.ask(n0, "lock {}") is None  # no answer in time: forgotten
    assert time.monotonic() - began < FOREVER / 2 and not session.hung
    assert session.read_timeouts[-1] == 0.2 and session.abandoned


def test_an_agent_running_a_phase_is_not_asked_anything_else(
    world: World, inventory: Inventory
) -> None:
    agents, n0 = Agents(), inventory.nodes[0]
    session = StalledAgent()
    assert agents.hand_over(n0, session)
    out = io.StringIO()
    running = threading.Thread(
        target=agents.run, args=(n0, "/w/r.json", "{}", out, out, [], None, 3600), daemon=True
    )
    running.start()
    while not any(line.startswith("run ") for line in session.sent):
        time.sleep(0.01)
    assert agents.ask(n0, "lock {}") is None  # the caller asks over a session of its own
    assert not any(line.startswith("lock ") for line in session.sent)
    session.resume(encode_line(AgentDone(0)) + "\n")
    running.join(5)
    assert not running.is_alive()
    session.resume("parbench-lock {}\n")
    assert agents.ask(n0, "lock {}") == "parbench-lock {}"  # free again once it ended
