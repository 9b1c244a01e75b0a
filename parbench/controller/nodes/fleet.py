"""The nodes of one ``fab`` command: one :class:`Fleet` per process, for every task of it.

``fab write read verify`` runs its tasks in one process, one after the other; so does a
sweep's runs and ``fab nightly``. The fleet holds what they share: the SSH connections
(controller/nodes/remote.py), the nodes' agents (controller/nodes/agents.py), the run
locks this process holds (controller/nodes/locks.py), and what the push found on each
node (its facts: host, Python, clock offset and round trip) with what it brought there,
and the runs the command started or continued (controller/run/session.py).
A node is probed and pushed once per command: a later task whose push would bring
nothing new (controller/phases.py's ``push``) takes the node as ready, with the facts
measured then, except its clock offset: measured again over its agent at each such push
(a few round trips), or, without an agent, by a probe once CLOCK_MAX_AGE has passed (a
sweep or ``nightly`` lasts hours; the clocks drift). A node that failed a step is probed
again by the next push.

Tasks reach it through :func:`current`: the first one that needs a node makes it, and it
is closed once, when the process ends, in one order: the locks given back (through the
agents, one line each), then the agents ended, then the connections closed.
"""

from __future__ import annotations

import atexit
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import methodcaller
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Optional, Protocol, Sequence, TypeVar

from fabric import Connection

from ..run.inventory import Inventory, Node
from ..run.session import Runs
from . import remote
from .agents import Agents
from .nodeprobe import NodeInfo
from .remote import Connections, StepOutcome, close_each, connection_key

T = TypeVar("T")


class HeldLocks(Protocol):
    """A run's locks this process holds (controller/nodes/locks.py's RunLocks, which
    keeps them here: the fleet gives them back when it closes, without importing it)."""

    def release(self) -> None: ...


@dataclass(frozen=True)
class Pushed:
    """What one push brought to a node and learnt about it."""

    info: NodeInfo
    python: str  # nodes[].python the runtime was made with
    files: frozenset[tuple[str, str]]  # (path in the workdir, sha256) of every artifact
    generated: frozenset[int]  # the sizes of generated data made (or found) there
    clocked: float  # when its clock offset was measured (time.monotonic())


#: seconds a clock offset is used for when it cannot be measured again over the node's
#: agent: then the next push probes the node (clocks drift apart by tens of ppm)
CLOCK_MAX_AGE = 600.0


class Fleet:
    """The connections, agents, locks and pushed nodes of one ``fab`` command."""

    def __init__(self, connect: Optional[Callable[[Inventory, Node], Connection]] = None) -> None:
        self.connections = Connections(connect)
        self.agents = Agents()
        self.locks: dict[str, HeldLocks] = {}  # run id -> this process's locks on it
        self.runs = Runs()  # the runs this command started or continued
        self._pushed: dict[tuple, Pushed] = {}
        self._facts: dict[tuple, NodeInfo] = {}  # what the latest probe measured on a node
        self.saved: dict[Path, dict] = {}  # run folder -> the hosts.json this command wrote
        #: the sizes of generated data this command needs (a sweep over size: every
        #: point's): a push that generates data makes them all, under one probe's lock
        self.sizes: frozenset[int] = frozenset()
        self._guard = threading.Lock()
        self._closing = False
        self.closed = False

    def pushed(self, node: Node, files: frozenset, generated: Optional[int]) -> Optional[NodeInfo]:
        """What the push of this command found on ``node``, when it brought there all of
        ``files`` (and the generated data of size ``generated``, if any) for the same
        Python: the node is ready, nothing to probe or copy (as said for a push that
        found it up to date). None when it needs a push."""
        with self._guard:
            done = self._pushed.get(connection_key(node))
        if done is None or done.python != node.python or not files <= done.files:
            return None
        if generated is not None and generated not in done.generated:
            return None  # made under the workdir's lock, which the probe takes
        if time.monotonic() - done.clocked > CLOCK_MAX_AGE:
            return None  # its clock offset is too old: probed again
        return replace(done.info, uploaded=0, provisioned=False)

    def ready(
        self, inventory: Inventory, files: frozenset, generated: Optional[int]
    ) -> dict[str, NodeInfo]:
        """Node id -> what this command found on it, for each node of ``inventory`` that
        is :meth:`pushed` (the others need a push), its clock offset measured again over
        its agent (in parallel): the start times sent to the nodes, the deadlines and the
        records' skew follow the nodes' clocks through a command of hours. A node whose
        agent does not answer with its clock needs a push (a probe measures it)."""
        found = {n.id: info for n in inventory.nodes if (info := self.pushed(n, files, generated))}
        agents = [n for n in inventory.nodes if n.id in found and self.agents.has(n)]
        if agents:
            outcomes = remote.on_nodes(
                inventory, "clock", lambda conn, node: self._clock(node), agents,
                connections=self.connections, given_up=self.give_up,
            )  # fmt: skip
            for o in outcomes:
                if o.value is None:
                    del found[o.node.id]
                else:
                    found[o.node.id] = o.value
        return found

    def _clock(self, node: Node) -> Optional[NodeInfo]:
        """What was pushed to ``node``, with its clock offset measured again over its
        agent (and kept in the facts); None when it could not be."""
        measured = self.agents.clock(node)
        if measured is None:
            return None
        offset, error = measured
        with self._guard:
            done = self._pushed.get(connection_key(node))
            if done is None:
                return None
            info = replace(done.info, clock_offset=offset, clock_error=error)
            self._pushed[connection_key(node)] = replace(done, info=info, clocked=time.monotonic())
            self._facts[connection_key(node)] = info
        return replace(info, uploaded=0, provisioned=False)

    def note_pushed(
        self, node: Node, info: NodeInfo, files: frozenset, generated: Collection[int]
    ) -> None:
        """The push brought ``files`` and the generated data of the sizes ``generated``
        to ``node`` and measured ``info`` there."""
        sizes = frozenset(generated)
        with self._guard:
            before = self._pushed.get(connection_key(node))
            if before is not None and before.python == node.python:
                sizes |= before.generated  # a push leaves the data of other sizes there
            now = time.monotonic()
            self._pushed[connection_key(node)] = Pushed(info, node.python, files, sizes, now)
            self._facts[connection_key(node)] = info

    def facts(self, nodes: Sequence[Node]) -> dict[str, NodeInfo]:
        """Node id -> what the latest push of this command measured on it (host, Python,
        clock offset and error, what it copied), for each of ``nodes`` a push reached: the
        phase loop's clock offsets and start margin, and the run's hosts.json. A node
        that failed a step since keeps its facts (it is probed again all the same)."""
        with self._guard:
            return {n.id: info for n in nodes if (info := self._facts.get(connection_key(n)))}

    def unready(self, node: Node) -> None:
        """``node`` failed a step (or its generated data was deleted): the next push
        probes it again."""
        with self._guard:
            self._pushed.pop(connection_key(node), None)

    def give_up(self, node: Node) -> None:
        """``node`` was given up with a thread of this process still on it (Ctrl-C, no
        answer): its agent is ended and forgotten (the thread may be reading its session;
        the locks are then given back over a session of their own), and the next push
        probes it again."""
        self.agents.forget(node)
        self.unready(node)

    def close(self) -> None:
        """Give back every lock (through the agents while they are there), end the
        agents, close the connections; once."""
        if self._closing:
            return
        self._closing = True  # still the current fleet while its locks are given back
        held, self.locks = list(self.locks.values()), {}
        close_each(held, methodcaller("release"))
        self.agents.close()
        self.connections.close()
        self.closed = True


_CURRENT: Optional[Fleet] = None
_MADE = threading.Lock()


def current() -> Fleet:
    """This command's fleet, made by the first task that needs it (closed at exit)."""
    global _CURRENT
    with _MADE:
        if _CURRENT is None or _CURRENT.closed:
            _CURRENT = Fleet()
            atexit.register(_CURRENT.close)
        return _CURRENT


@contextmanager
def using(fleet: Fleet) -> Iterator[Fleet]:
    """``fleet`` as the current one while inside (tests: a fleet over fake connections);
    closed on the way out, the one before restored."""
    global _CURRENT
    with _MADE:
        before, _CURRENT = _CURRENT, fleet
    try:
        yield fleet
    finally:
        fleet.close()
        with _MADE:
            _CURRENT = before


def on_nodes(
    inventory: Inventory,
    step: str,
    fn: Callable[[Connection, Node], T],
    nodes: Optional[Sequence[Node]] = None,
    **options: Any,
) -> list[StepOutcome[T]]:
    """``remote.on_nodes`` over this command's connections (the fleet holds them)."""
    fleet = current()
    return remote.on_nodes(
        inventory, step, fn, nodes, connections=fleet.connections, given_up=fleet.give_up,
        **options,
    )  # fmt: skip
