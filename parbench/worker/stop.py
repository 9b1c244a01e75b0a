"""Stopping a node's clients before they are done, for one of a few reasons.

The worker stops its clients when the controller says ``stop`` on its stdin (Ctrl-C or
SIGTERM there), when that stdin ends (the connection to the controller is lost), when
the worker itself gets SIGINT or SIGTERM, or at the deadline. :class:`StopSignal` carries
the reason to the worker's loop (a self-pipe it waits on, safe to set from a signal
handler or a thread) and to the clients (a shared integer their SIGTERM handler reads),
so that every record says why its client stopped.
"""

from __future__ import annotations

import ctypes
import os
import signal
from contextlib import suppress
from typing import Any, Optional

from .protocol import ExitCode
from .storage import StorageError

DEADLINE = 1
CONTROLLER = 2
CONNECTION_LOST = 3
INTERRUPTED = 4
TERMINATED = 5

PR_SET_PDEATHSIG = 1  # prctl(2)

REASONS = {
    DEADLINE: "timed out: still running at the deadline",
    # 0 (no reason set) with a SIGTERM: the worker died, the parent-death signal fired
    0: "stopped: its worker died",
    CONTROLLER: "stopped: the controller was interrupted",
    CONNECTION_LOST: "stopped: the connection to the controller was lost",
    INTERRUPTED: "stopped: the worker got SIGINT",
    TERMINATED: "stopped: the worker got SIGTERM",
}


class Stopped(StorageError):
    """Raised in a client by SIGTERM: its IO ends as an error record saying why (a
    StorageError so that the partial file is cleaned up like any failed transfer)."""


class StopSignal:
    """Why the clients must stop (0: they need not); set once, the first reason wins."""

    def __init__(self, context: Any) -> None:
        self.code = context.Value("i", 0, lock=False)  # shared with the clients
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    @property
    def fd(self) -> int:
        """Readable once a stop is requested (for ``multiprocessing.connection.wait``)."""
        return self._read

    @property
    def requested(self) -> int:
        return int(self.code.value)

    @property
    def reason(self) -> str:
        return REASONS.get(self.requested, "stopped")

    def request(self, code: int) -> None:
        if self.code.value == 0:
            self.code.value = code
        with suppress(BlockingIOError):  # already signalled many times
            os.write(self._write, b"x")

    def close(self) -> None:
        for fd in (self._read, self._write):
            with suppress(OSError):
                os.close(fd)

    def exit_code(self, default: ExitCode) -> ExitCode:
        """What the worker exits with, having saved its records."""
        if self.requested == TERMINATED:
            return ExitCode.TERMINATED
        if self.requested in (CONTROLLER, CONNECTION_LOST, INTERRUPTED):
            return ExitCode.INTERRUPTED
        return default


def stop_on_signals(stop: StopSignal) -> None:
    """SIGINT and SIGTERM stop the clients (and the records are saved) instead of
    killing the worker with its clients still loading the cluster."""
    signal.signal(signal.SIGINT, lambda *_: stop.request(INTERRUPTED))
    signal.signal(signal.SIGTERM, lambda *_: stop.request(TERMINATED))


def with_its_worker() -> None:
    """In a client process: SIGTERM when the worker dies (Linux's parent-death signal),
    so that a killed worker leaves no client loading the cluster. Elsewhere, nothing."""
    parent = os.getppid()
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # it died before that took effect
        os.kill(os.getpid(), signal.SIGTERM)


def in_client(code: Any) -> None:
    """In a client process: SIGTERM raises :class:`Stopped` with the worker's reason."""

    def stopped(signum: int, frame: Optional[object]) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cleanup run
        raise Stopped(REASONS.get(int(code.value), "stopped by its worker"))

    signal.signal(signal.SIGTERM, stopped)
