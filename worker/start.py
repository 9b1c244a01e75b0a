"""The common start: every client sets up, then all begin their timed IO at one moment.

Two levels, like an MPI barrier followed by a timed start:

- on a node, ``StartSignal`` holds the client processes after their set-up (session,
  directories) until the worker releases them all with one start time;
- across nodes, the worker asks the controller for that time once all of its clients are
  ready (``--start-on-stdin``): it prints ``READY_MARKER`` and reads ``go EPOCH`` from
  stdin. The controller answers when every node is ready, so a slow set-up (a cold
  proxy, a slow node) delays the start instead of spoiling it.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import Any, Optional, TextIO

#: printed by the worker once all of its clients are ready; the controller watches for it
READY_MARKER = "parbench-ready"
#: the controller's answer on the worker's stdin: ``go <epoch seconds, node clock>``
GO = "go"


def wait_until(start_at: Optional[float]) -> None:
    """Sleep until the epoch time ``start_at`` on this node's clock (no wait if None or past)."""
    if start_at is None:
        return
    while True:
        remaining = start_at - time.time()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 1.0))


class NoStart(Exception):
    """The controller gave no start time: nobody starts (the message says why)."""


class StartSignal:
    """Shared by the worker and its client processes (made before they start).

    A client calls ``arrive()`` when set up; it returns at the common start. The worker
    counts arrivals with ``wait_ready`` and releases everyone with ``release``.
    """

    def __init__(self, context: Any) -> None:
        self._ready = context.Semaphore(0)
        self._go = context.Event()
        self._at = context.Value("d", 0.0, lock=False)
        self._cancelled = context.Value("b", 0, lock=False)
        self._parent = os.getpid()

    def arrive(self) -> None:
        """In a client: say ready, then sleep until released and the start time has come.

        Raises NoStart if the start was cancelled: the client then never does its IO."""
        self._ready.release()
        while not self._go.wait(1.0):
            if os.getppid() != self._parent:
                raise NoStart("the worker went away before the common start")
        if self._cancelled.value:
            raise NoStart("no common start from the controller; not started")
        wait_until(self._at.value or None)

    def take_arrival(self, timeout: float) -> bool:
        """In the worker: True if one more client arrived within ``timeout`` seconds."""
        return self._ready.acquire(timeout=timeout)

    def release(self, start_at: Optional[float]) -> None:
        """In the worker: let every client go, at ``start_at`` (None: at once)."""
        self._at.value = start_at or 0.0
        self._go.set()

    def cancel(self) -> None:
        """In the worker: every waiting client gives up without doing its IO."""
        self._cancelled.value = 1
        self._go.set()


def ask_controller(
    node: str, clients: int, timeout: float, stdin: TextIO = sys.stdin
) -> float:
    """Say this node is ready and wait up to ``timeout`` s for ``go EPOCH`` on ``stdin``.

    Without an answer (no line in time, end of input, garbage) the controller is gone or
    broken: NoStart, after saying why on stderr. Timed IO that nobody coordinates or
    gathers would only load the cluster under someone else's benchmark.
    """
    print(f"{READY_MARKER} {node} {clients} clients", flush=True)
    readable, _, _ = select.select([stdin], [], [], max(timeout, 0.0))
    line = stdin.readline() if readable else None
    words = (line or "").split()
    if len(words) == 2 and words[0] == GO:
        try:
            return float(words[1])
        except ValueError:
            pass
    why = "no answer" if line is None else ("end of input" if not line else f"got {line!r}")
    message = f"{node}: no common start from the controller ({why} within {timeout:.0f} s)"
    print(f"parbench worker: {message}; no client starts", file=sys.stderr, flush=True)
    raise NoStart(message)
