"""The push check's one remote process per node: the probe (worker/probe.py) reports the
node's facts and claims its workdir, then answers clock requests over the same session,
so that checking a node costs one SSH session and one Python start-up.
"""

from __future__ import annotations

import functools
import shlex
import socket
import time
from pathlib import Path
from typing import Optional, Protocol

from fabric import Connection

from worker.protocol import PROBE_REFUSED, ProbeFacts, RequestError

from .inventory import Node
from .remote import StepError

PROBE = Path(__file__).resolve().parents[1] / "worker" / "probe.py"


@functools.cache
def probe_source() -> str:
    """The probe's source, read once per process (it is sent to every node)."""
    return PROBE.read_text()


#: seconds an answer on a session may take before the node counts as not answering (a
#: lock in storage has a minute of its own)
SESSION_TIMEOUT = 120.0


class Session(Protocol):
    """A remote command's stdin and stdout, a line at a time; ``timeout`` (seconds, None:
    none) bounds each wait from the next send on."""

    timeout: Optional[float]

    def send(self, text: str) -> None: ...

    def readline(self) -> str: ...

    def finish(self) -> tuple[int, str]:
        """Close its stdin, wait for it: its exit code and what it wrote to stderr."""
        ...

    def abandon(self) -> None:
        """Close the session without waiting: the command sees its input end."""
        ...


class ChannelSession:
    """A command on its own channel of the node's open SSH connection."""

    def __init__(self, conn: Connection, command: str) -> None:
        self.channel = conn.client.get_transport().open_session()
        self.channel.exec_command(command)
        self.replies = self.channel.makefile("rb")
        self.timeout: Optional[float] = SESSION_TIMEOUT

    def send(self, text: str) -> None:
        self.channel.settimeout(self.timeout)
        self.channel.sendall(text.encode())

    def readline(self) -> str:
        line = self.replies.readline()
        return line.decode(errors="replace") if isinstance(line, bytes) else line

    def finish(self) -> tuple[int, str]:
        try:
            self.channel.shutdown_write()
            code = self.channel.recv_exit_status()
            err = self.channel.makefile_stderr("r").read()
            return code, err.decode() if isinstance(err, bytes) else err
        finally:
            self.channel.close()

    def abandon(self) -> None:
        self.channel.close()


def open_session(conn: Connection, command: str) -> Session:
    return ChannelSession(conn, command)


def clock_offset(session: Session, samples: int = 5) -> tuple[float, float]:
    """(offset, uncertainty): the node's clock minus ours, NTP-style over a session that
    answers each line with its clock. The session is set up before the first sample, so
    the round trips are symmetric; the shortest wins and half of it bounds the error."""
    best: Optional[tuple[float, float]] = None
    for _ in range(samples):
        before = time.time()
        session.send("\n")
        answer = session.readline()
        half = (time.time() - before) / 2
        try:
            remote = float(answer)
        except ValueError:
            raise StepError(f"the probe's clock answered {answer.strip()[:80]!r}") from None
        if best is None or half < best[1]:
            best = (remote - (before + half), half)
    assert best is not None
    return best


def probe_node(
    conn: Connection, node: Node, asked: list[str]
) -> tuple[ProbeFacts, float, float, Session]:
    """The facts of ``node`` about the files ``asked`` (its workdir claimed when its
    Python can run the worker), its clock offset and the offset's uncertainty, and the
    probe's session, still open: the caller finishes it or hands it over to the node's
    agent (controller/agents.py). StepError saying why when the workdir is refused or
    the probe fails."""
    q = shlex.quote
    names = " ".join(q(name) for name in asked)
    # the source as an argument: stdin carries the clock requests
    session = open_session(
        conn, f"{q(node.python)} -c {q(probe_source())} {q(node.workdir)} {names}"
    )
    try:
        first = session.readline()
    except (socket.timeout, TimeoutError):
        session.abandon()
        raise StepError(_silent("report its facts", session)) from None
    if not first:
        code, err = session.finish()
        if code == PROBE_REFUSED:  # not parbench's workdir: nothing was touched
            raise StepError(err.strip())
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise StepError(f"the probe exited {code}" + (f": {tail}" if tail else ""))
    try:
        facts = ProbeFacts.from_json(first)
    except RequestError as exc:
        session.finish()
        raise StepError(f"the probe's answer cannot be read: {exc}") from None
    try:
        offset, error = clock_offset(session)
    except (socket.timeout, TimeoutError):
        session.abandon()
        raise StepError(_silent("answer the clock", session)) from None
    except BaseException:
        session.finish()
        raise
    return facts, offset, error, session


def _silent(what: str, session: Session) -> str:
    # not "unreachable": the node was connected to and its probe started
    return f"the probe did not {what} within {session.timeout or 0:g} s"
