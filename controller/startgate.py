"""The controller's half of the common start (the worker's half is worker/start.py).

Each node's worker prints ``READY_MARKER`` once its clients are set up and waits for
``go EPOCH`` on stdin. ``StartGate`` holds the nodes' answers until every node is ready
(or has dropped out, or ``ready_timeout`` has passed), then gives them all one start
``margin`` seconds ahead, each on its own clock. ``ReadyWatcher`` plugs a node into the
gate through invoke's stream watchers, which write their answers to the command's stdin.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Iterable, Optional

from invoke.watchers import StreamWatcher

from worker.start import GO, READY_MARKER


class StartGate:
    """A barrier across node threads that yields one start time (controller clock)."""

    def __init__(self, nodes: Iterable[str], margin: float, ready_timeout: float) -> None:
        self._waiting = set(nodes)
        self._margin = margin
        self._ready_timeout = ready_timeout
        self._opened = time.time()
        self._start: Optional[float] = None
        self._late: list[str] = []
        self._lock = threading.Condition()

    def arrive(self, node: str) -> float:
        """``node`` is ready: block until all are, return the common start.

        A node that arrives after the others were let go gets that same start, already
        past: it begins at once and its records show how late it was."""
        with self._lock:
            if self._start is not None:
                self._late.append(node)
            self._waiting.discard(node)
            self._lock.notify_all()
            give_up = self._opened + self._ready_timeout
            self._lock.wait_for(lambda: not self._waiting, timeout=give_up - time.time())
            if self._start is None:
                self._start = time.time() + self._margin
            return self._start

    def leave(self, node: str) -> None:
        """``node`` will not arrive (its step failed or had nothing to start)."""
        with self._lock:
            self._waiting.discard(node)
            self._lock.notify_all()

    @property
    def start(self) -> Optional[float]:
        return self._start

    @property
    def late(self) -> list[str]:
        """Nodes that became ready only after ``ready_timeout``, when the others had gone."""
        return list(self._late)


_READY_LINE = re.compile(rf"(?:^|\n){re.escape(READY_MARKER)} ")


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
        # called with all the output so far, by the stdout and the stderr reader threads
        with self._lock:
            if self._answered or not _READY_LINE.search(stream):
                return []
            self._answered = True
        start = self.gate.arrive(self.node)
        return [f"{GO} {start + self.clock_offset:.6f}\n"]
