"""``python -m worker agent``: the node's side of the controller's open session.

The push's probe hands its session over to this (an exec: no new SSH session, no new
shell), and the controller sends it one request per line for the rest of its command:

- ``lock REQUEST_JSON``: take or give back the run's locks (worker/lock.py), answered
  with its one ``LOCK_REPLY`` line;
- ``run {"save": PATH, "request": REQUEST_JSON}``: run a phase as ``python -m worker run``
  would, in a child process forked from this one (its output, the ready/go/stop
  handshake and ``@record`` lines on this session; its stderr as stdout lines tagged
  ``STDERR_TAG``), the request kept at PATH first. The child says ``AGENT_STARTED``
  first: the controller sends nothing more (a ``go``, a ``stop``) before it, so nothing
  meant for the child can be read by this process. Answered with ``AGENT_DONE
  EXIT_CODE`` once the child has ended.

It says ``AGENT_READY`` first and ends when its stdin does (the controller done, or its
connection gone). A ``stop`` that arrives after a phase ended is ignored. Stdlib and the
worker only, Python 3.9+.
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import suppress
from typing import Callable, Iterable, TextIO

from worker import lock
from worker.protocol import (
    AGENT_DONE,
    AGENT_READY,
    AGENT_STARTED,
    STDERR_TAG,
    STOP,
    ExitCode,
    PhaseRequest,
    save_request,
)

Execute = Callable[[PhaseRequest], int]


def serve(lines: Iterable[str], out: TextIO, execute: Execute) -> int:
    out.write(AGENT_READY + "\n")
    out.flush()
    for line in lines:
        verb, _, rest = line.rstrip("\n").partition(" ")
        if verb == "lock":
            lock.main(rest)  # prints its one line
        elif verb == "run":
            out.flush()
            code = _run(rest, execute)
            print(f"{AGENT_DONE} {code}", flush=True)
        elif verb != STOP:  # a stop meant for a phase that just ended
            print(f"parbench worker: agent: no such request {verb!r}", flush=True)
    return 0


class Tagged(io.TextIOBase):
    """Stderr as whole lines on stdout, each tagged ``STDERR_TAG`` (the controller shows
    them as stderr): one SSH stream for a phase's output, in the order it was written."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        if lines:
            self.out.write("".join(f"{STDERR_TAG}{line}\n" for line in lines))
            self.out.flush()
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.write("\n")
        self.out.flush()


def _run(text: str, execute: Execute) -> int:
    """The exit code of the phase ``text`` asks for, run in a child process."""
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the phase, then out, whatever happens
        code = int(ExitCode.USAGE)
        os.dup2(1, 2)  # what bypasses sys.stderr joins stdout: one stream, read
        sys.stderr = Tagged(sys.stdout)  # one stream: the order of the lines is kept
        print(AGENT_STARTED, flush=True)  # what the controller sends now is the child's
        try:
            asked = json.loads(text)
            save_request(asked["save"], asked["request"])
            request = PhaseRequest.from_json(asked["request"])
            if request.out is not None:  # only this run's records can be told or fetched
                with suppress(FileNotFoundError):
                    os.remove(request.out)
            code = int(execute(request))
        except BaseException as exc:  # noqa: BLE001 - said, and the exit code tells
            print(f"parbench worker: agent: run: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            for stream in (sys.stdout, sys.stderr):
                with suppress(OSError):
                    stream.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)
