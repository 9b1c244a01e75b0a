"""The common start: every client sets up, then all begin their timed IO at one moment.

Two levels, like an MPI barrier followed by a timed start:

- on a node, each client process says it is ready after its set-up (session,
  directories) and waits for the worker's answer (worker/clients.py), which comes once
  every client is ready;
- across nodes, the worker asks the controller for that time once all of its clients are
  ready (``--start-on-stdin``): it prints ``READY_MARKER`` and reads ``go EPOCH`` from
  stdin. The controller answers when every node is ready, so a slow set-up (a cold
  proxy, a slow node) delays the start instead of spoiling it.
"""

from __future__ import annotations

import select
import sys
import time
from typing import Optional, TextIO

from worker.protocol import GO, READY_MARKER, STOP


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


def ask_controller(node: str, timeout: float, stdin: TextIO = sys.stdin) -> float:
    """Say this node is ready and wait up to ``timeout`` s for ``go EPOCH`` on ``stdin``.

    Without an answer (no line in time, end of input, garbage) the controller is gone or
    broken: NoStart, after saying why on stderr. Timed IO that nobody coordinates or
    gathers would only load the cluster under someone else's benchmark.
    """
    print(f"{READY_MARKER} {node}", flush=True)
    readable, _, _ = select.select([stdin], [], [], max(timeout, 0.0))
    line = stdin.readline() if readable else None
    words = (line or "").split()
    if len(words) == 2 and words[0] == GO:
        try:
            return float(words[1])
        except ValueError:
            pass
    if line is None:
        why = f"no answer within {timeout:.0f} s"
    elif not line:
        why = "end of input: the controller is gone"
    elif line.strip() == STOP:
        why = "the controller was interrupted"
    else:
        why = f"got {line!r}"
    message = f"{node}: no common start from the controller ({why})"
    print(f"parbench worker: {message}; no client starts", file=sys.stderr, flush=True)
    raise NoStart(message)
