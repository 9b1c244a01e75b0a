"""``python -m worker agent``: the node's side of the controller's open session.

The push's probe hands its session over to this (an exec: no new SSH session, no new
shell), and the controller sends it one request per line for the rest of its command:

- ``lock REQUEST_JSON``: take or give back the run's locks (worker/lock.py), answered
  with its one ``LockReply`` line (worker/protocol/lines.py);
- ``run {"save": PATH, "request": REQUEST_JSON}``: run a phase as ``python -m worker run``
  would, in a child process forked from this one (its output, the ready/go/stop
  handshake and ``@record`` lines on this session; its stderr as stdout lines tagged
  ``Stderr``), the request kept at PATH first. The child says ``AgentStarted``
  first: the controller sends nothing more (a ``go``, a ``stop``) before it, so nothing
  meant for the child can be read by this process. Answered with ``AgentDone``
  (its exit code) once the child has ended.
- ``clock``: its clock, answered with one ``AgentClock`` line (the controller measures
  the clock offset again before each task, without a probe).

It says ``AgentReady`` first and ends when its stdin does (the controller done, or its
connection gone). A ``stop`` that arrives after a phase ended is ignored. Stdlib and the
worker only, Python 3.9+.
"""

from __future__ import annotations

import io
import os
import sys
import time
from contextlib import suppress
from typing import Callable, Iterable, Optional, TextIO

from . import lock
from .protocol import (
    AgentClock,
    AgentClockAsk,
    AgentDone,
    AgentReady,
    AgentStarted,
    ExitCode,
    LockAsk,
    MessageError,
    PhaseRequest,
    RunAsk,
    Stderr,
    Stop,
    decode_line,
    encode_line,
    save_request,
)

Execute = Callable[[PhaseRequest], int]


def serve(lines: Iterable[str], out: TextIO, execute: Execute) -> int:
    out.write(encode_line(AgentReady()) + "\n")
    out.flush()
    for line in lines:
        try:
            asked = decode_line(line)
        except MessageError as exc:  # a run that cannot be read is answered as one
            asked, error = (None, str(exc)) if exc.kind is RunAsk else (exc, "")
        else:
            error = ""
        if isinstance(asked, AgentClockAsk):
            print(encode_line(AgentClock(time.time())), flush=True)
        elif isinstance(asked, LockAsk):
            lock.main(asked.request)  # prints its one line
        elif isinstance(asked, RunAsk) or error:
            out.flush()
            code = _run(asked, error, execute)
            print(encode_line(AgentDone(code)), flush=True)
        elif not isinstance(asked, Stop):  # a stop meant for a phase that just ended
            verb = line.rstrip("\n").partition(" ")[0]
            print(f"parbench worker: agent: no such request {verb!r}", flush=True)
    return 0


class Tagged(io.TextIOBase):
    """Stderr as whole lines on stdout, each a ``Stderr`` message (the controller shows
    them as stderr): one SSH stream for a phase's output, in the order it was written."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        if lines:
            self.out.write("".join(encode_line(Stderr(line)) + "\n" for line in lines))
            self.out.flush()
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.write("\n")
        self.out.flush()


def _run(asked: Optional[RunAsk], error: str, execute: Execute) -> int:
    """The exit code of the phase ``asked`` for (``error``: why the ask cannot be read),
    run in a child process."""
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the phase, then out, whatever happens
        code = int(ExitCode.USAGE)
        os.dup2(1, 2)  # what bypasses sys.stderr joins stdout: one stream, read
        sys.stderr = Tagged(sys.stdout)  # one stream: the order of the lines is kept
        print(encode_line(AgentStarted()), flush=True)  # from now on: the child's
        try:
            if asked is None:
                raise MessageError(RunAsk, error)
            save_request(asked.save, asked.request)
            request = PhaseRequest.from_json(asked.request)
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
