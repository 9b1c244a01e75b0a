"""The controller's half of the common start (the worker's half is worker/start.py).

Each node's worker prints a ``Ready`` line once its clients are set up and waits for
``Go`` on stdin (the lines: worker/protocol/lines.py). ``StartGate`` holds the nodes' answers
until every node is ready (or has dropped out, or ``ready_timeout`` has passed), then
gives them all one start ``margin`` seconds ahead, each on its own clock, or, when the
controller is interrupted, tells them not to start. ``ReadyWatcher`` plugs a node into
the gate through invoke's stream watchers, which write their answers to the command's
stdin.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Optional, Sequence

from invoke.watchers import StreamWatcher

from parbench.worker.protocol import Go, Stop, encode_line, ready_in

#: ``start_delay: auto``: the start comes this long after the last node is ready, plus
#: ``AUTO_ROUND_TRIPS`` times the slowest node's round trip (measured by the push's
#: clock probe), plus ``AUTO_PER_NODE`` per node (the controller sends each its ``go``
#: from its own thread, under one interpreter lock). A node whose ``go`` comes late says
#: so (worker/start.py), and the phase's start skew shows by how much.
AUTO_BASE = 0.05
AUTO_ROUND_TRIPS = 4
AUTO_PER_NODE = 0.001
#: the round trip assumed for a node the push did not measure
AUTO_UNKNOWN_TRIP = 0.1


def auto_margin(round_trips: Sequence[float]) -> float:
    """Seconds between the last node ready and the common start, for nodes with these
    round trips (seconds, one per node)."""
    slowest = max(round_trips, default=0.0)
    return AUTO_BASE + AUTO_ROUND_TRIPS * slowest + AUTO_PER_NODE * len(round_trips)


class StartGate:
    """A barrier across node threads that yields one start time (controller clock).

    ``ready_timeout`` counts from the gate's creation, at the start of the phase."""

    def __init__(self, nodes: Iterable[str], margin: float, ready_timeout: float) -> None:
        self._waiting = set(nodes)
        self._margin = margin
        self._give_up = time.time() + ready_timeout
        self._start: Optional[float] = None
        self._cancelled = False
        self._late: list[str] = []
        self._lock = threading.Condition()

    def arrive(self, node: str) -> Optional[float]:
        """``node`` is ready: block until all are, return the common start, or None if
        the run was cancelled meanwhile.

        A node ready only after ``ready_timeout`` does not wait for the others any more
        and is named in ``late``; one that comes after the start was fixed gets that
        start, already past: it begins at once and its records show how late it was."""
        with self._lock:
            if time.time() > self._give_up:
                self._late.append(node)
            self._waiting.discard(node)
            self._lock.notify_all()
            self._lock.wait_for(
                lambda: not self._waiting or self._cancelled, timeout=self._give_up - time.time()
            )
            if self._cancelled:
                return None
            if self._start is None:
                self._start = time.time() + self._margin
            return self._start

    def leave(self, node: str) -> None:
        """``node`` will not arrive (its step failed or had nothing to start)."""
        with self._lock:
            self._waiting.discard(node)
            self._lock.notify_all()

    def cancel(self) -> None:
        """No start at all (the controller is interrupted): waiting and later arrivals
        get None."""
        with self._lock:
            self._cancelled = True
            self._lock.notify_all()

    @property
    def late(self) -> list[str]:
        """Nodes that became ready only after ``ready_timeout``."""
        return list(self._late)


class ReadyWatcher(StreamWatcher):
    """Answers a node's ready line with ``go <start on that node's clock>``."""

    def __init__(self, gate: StartGate, node: str, clock_offset: float) -> None:
        super().__init__()
        self.gate = gate
        self.node = node
        self.clock_offset = clock_offset
        self._answered = False
        self._lock = threading.Lock()

    def submit(self, stream: str) -> list[str]:
        # invoke calls this with all the output so far, from its stdout reader thread and
        # from its stderr one; the worker prints the ready line on stdout only
        with self._lock:
            if self._answered or not ready_in(stream):
                return []
            self._answered = True
        start = self.gate.arrive(self.node)
        if start is None:
            return [encode_line(Stop()) + "\n"]  # the worker's clients give up
        return [encode_line(Go(start + self.clock_offset)) + "\n"]
