"""The common start: every client sets up, then all begin their timed IO at one moment.

Two levels, like an MPI barrier followed by a timed start:

- on a node, each client process says it is ready after its set-up (session,
  directories) and waits for the worker's answer (worker/clients.py), which comes once
  every client is ready;
- across nodes, the worker asks the controller for that time once all of its clients are
  ready (``--start-on-stdin``): it prints a ``Ready`` line and reads ``Go`` from stdin
  (worker/protocol/lines.py; :class:`ControllerLink`, which also hears ``Stop`` there). The
  controller answers when every node is ready, so a slow set-up (a cold proxy, a slow node) delays
  the start instead of spoiling it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from contextlib import suppress
from typing import Iterator, Optional, TextIO

from .protocol import Go, MessageError, Ready, Stop, decode_line, encode_line
from .stop import CONNECTION_LOST, CONTROLLER, StopSignal


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


def _lines(fd: int) -> Iterator[str]:
    """Lines read from the file descriptor itself: ``sys.stdin``'s buffer has a lock that a
    reading thread would hold while clients fork, and a forked client closes stdin."""
    pending = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace") + "\n"


def _say_if_late(node: str, start: float) -> None:
    """A start that had passed when it arrived: the clients begin at once, late, and the
    start skew shows it; say what to change."""
    late = time.time() - start
    if late > 0:
        print(
            f"parbench worker: {node}: the common start arrived {late * 1000:.1f} ms after it"
            " was due; its clients begin at once (raise defaults.start_delay)",
            file=sys.stderr,
            flush=True,
        )


class ControllerLink:
    """The worker's stdin, where the controller speaks: read by one thread for the whole
    phase. ``go EPOCH`` answers the barrier; ``stop`` or the end of input stops the
    clients (``controlled``: the controller's request) or, before the start, cancels it."""

    def __init__(self, stop: StopSignal, controlled: bool, stdin: TextIO = sys.stdin) -> None:
        self.stop = stop
        self.controlled = controlled
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(
            target=self._listen, args=(stdin,), name="parbench-controller", daemon=True
        ).start()

    def _listen(self, stdin: TextIO) -> None:
        why = CONNECTION_LOST
        for line in _lines(stdin.fileno()):
            self._answers.put(line)
            if _said(line) == Stop():
                why = CONTROLLER
                break
        else:
            self._answers.put("")  # end of input
        if self.controlled:
            self.stop.request(why)

    def ask(self, node: str, timeout: float) -> float:
        """Say this node is ready and wait up to ``timeout`` s for ``go EPOCH``.

        Without an answer (no line in time, end of input, stop, garbage) the controller is
        gone, interrupted or broken: NoStart, after saying why on stderr. Timed IO that
        nobody coordinates or gathers would only load the cluster under someone else's
        benchmark."""
        print(encode_line(Ready(node)), flush=True)
        until = time.monotonic() + max(timeout, 0.0)
        line: Optional[str] = None
        while line is None and time.monotonic() < until and not self.stop.requested:
            # in slices: a signal to the worker meanwhile cancels the start too
            with suppress(queue.Empty):
                line = self._answers.get(timeout=min(0.1, max(until - time.monotonic(), 0)))
        if line is None:  # what the controller said last may be why it stopped
            with suppress(queue.Empty):
                line = self._answers.get_nowait()
        said = _said(line or "")
        if isinstance(said, Go):
            _say_if_late(node, said.at)
            return said.at
        if line is None:
            why = self.stop.reason if self.stop.requested else f"no answer within {timeout:.0f} s"
        elif not line:
            why = "end of input: the controller is gone"
        elif said == Stop():
            why = "the controller was interrupted"
        else:
            why = f"got {line!r}"
        message = f"{node}: no common start from the controller ({why})"
        print(f"parbench worker: {message}; no client starts", file=sys.stderr, flush=True)
        raise NoStart(message)


def _said(line: str) -> object:
    """The controller's message ``line``, None when it is none or cannot be read."""
    try:
        return decode_line(line)
    except MessageError:
        return None
