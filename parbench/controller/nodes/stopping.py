"""Ctrl-C and SIGTERM on the controller: the load stops on every node, what finished is
saved, and ``fab`` exits 130 (SIGINT) or 143 (SIGTERM); a second one quits at once.

Each running worker's stdin is a pipe of ours (:class:`Controls`), handed to invoke as the
command's ``in_stream``: writing ``stop`` there reaches the node at invoke's next input
poll (10 ms; controller/nodes/remote.py reads the pipe whole), and the worker stops its
clients (worker/stop.py). Were the
controller to die instead, the SSH session's end closes that stdin, which stops the
worker just the same.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import IO, Any, Iterator

from parbench.worker.protocol import ExitCode, Stop, encode_line

from ..run import say


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so that it takes Ctrl-C's path."""


def exit_code(interrupt: BaseException) -> int:
    return int(ExitCode.TERMINATED if isinstance(interrupt, Terminated) else ExitCode.INTERRUPTED)


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def install() -> None:
    """SIGTERM behaves as Ctrl-C (only the main thread may install handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


class Interrupted(Exception):
    """A step on many nodes was interrupted; the nodes have finished, ``outcomes`` holds
    what each did, ``code`` is the exit code to leave with."""

    def __init__(self, outcomes: list, code: int) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes
        self.code = code


def quit_now(code: int) -> None:
    """The second Ctrl-C: leave at once (the nodes stop when our sessions close)."""
    say.err(
        "interrupted again: quitting now; each node stops its clients when its connection "
        "closes and keeps their records (fab report --collect fetches them)"
    )
    os._exit(code)


class Controls:
    """The stdin of every worker running now, to tell them all to stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writers: dict[str, int] = {}
        self.stopped = False

    @contextmanager
    def attach(self, node: str) -> Iterator[IO[bytes]]:
        """A stream to give as ``in_stream`` to the worker of ``node``."""
        read, write = os.pipe()
        # unbuffered: invoke reads a byte at a time once select says the pipe is readable,
        # and a buffered reader would keep the rest of the line from it
        reader = os.fdopen(read, "rb", buffering=0)
        with self._lock:
            self._writers[node] = write
            if self.stopped:  # stopped before this node began: it stops at once
                os.write(write, (encode_line(Stop()) + "\n").encode())
        try:
            yield reader
        finally:
            with self._lock:
                del self._writers[node]
            os.close(write)
            reader.close()

    def stop_all(self) -> None:
        with self._lock:
            self.stopped = True
            for write in self._writers.values():
                os.write(write, (encode_line(Stop()) + "\n").encode())
