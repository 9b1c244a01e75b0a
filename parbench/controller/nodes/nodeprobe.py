"""The push check's one remote process per node: the probe (worker/probe.py) reports the
node's facts and claims its workdir, then answers clock requests over the same session,
so that checking a node costs one SSH session and one Python start-up.
"""

from __future__ import annotations

import functools
import shlex
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Protocol

from fabric import Connection

from parbench.worker.protocol import (
    PROBE_REFUSED,
    AgentClock,
    AgentClockAsk,
    ClockAsk,
    MessageError,
    ProbeFacts,
    RequestError,
    decode_clock,
    decode_line,
    encode_line,
)

from ..run.inventory import Node
from .nodeoutput import CUT_MARKER, MAX_LINE, TAIL_CHARS, printable, tail
from .remote import StepError

PROBE = Path(__file__).resolve().parents[2] / "worker" / "probe.py"


@functools.cache
def probe_source() -> str:
    """The probe's source, read once per process (it is sent to every node)."""
    return PROBE.read_text()


#: seconds an answer on a session may take before the node counts as not answering (a
#: lock in storage has a minute of its own)
SESSION_TIMEOUT = 120.0
#: reads of a finished command's stderr (64 KiB each) before the rest is left unread
STDERR_READS = 256


class Session(Protocol):
    """A remote command's stdin and stdout, a line at a time; ``timeout`` (seconds, None:
    none) bounds the reading of each line (TimeoutError past it), however much of the line
    trickles in."""

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
    """A command on its own channel of the node's open SSH connection. Its lines are read
    from the channel here, not through paramiko's file: each line within ``timeout`` (a
    deadline for the line, not for each read) and cut at MAX_LINE bytes."""

    def __init__(self, conn: Connection, command: str) -> None:
        self.channel = conn.client.get_transport().open_session()
        self.channel.exec_command(command)
        self.timeout: Optional[float] = SESSION_TIMEOUT
        self._rest = b""  # read past the last line returned

    def send(self, text: str) -> None:
        self.channel.settimeout(self.timeout)
        self.channel.sendall(text.encode())

    def readline(self) -> str:
        """The next line ("" at the end of the output); TimeoutError (socket.timeout)
        when it is not whole within ``timeout``."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        parts: list[bytes] = []
        size, cut = 0, False
        while True:
            if not self._rest:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout(f"no line within {self.timeout:g} s")
                    self.channel.settimeout(left)
                else:
                    self.channel.settimeout(None)
                self._rest = self.channel.recv(65536)
                if not self._rest:
                    break
            newline = self._rest.find(b"\n")
            end = len(self._rest) if newline < 0 else newline + 1
            piece, self._rest = self._rest[:end], self._rest[end:]
            if not cut:
                if size + len(piece.rstrip(b"\n")) > MAX_LINE:
                    parts.append(piece[: MAX_LINE - size])
                    cut = True
                else:
                    parts.append(piece)
                    size += len(piece)
            if newline >= 0:
                break
        line = b"".join(parts).decode(errors="replace")
        return line.rstrip("\n") + CUT_MARKER + "\n" if cut else line

    def finish(self) -> tuple[int, str]:
        """Its exit code and the end of its stderr (TAIL_CHARS); within ``timeout``, else
        -1 and why."""
        try:
            self.channel.shutdown_write()
            if not self.channel.status_event.wait(self.timeout):
                return -1, f"no exit status within {self.timeout:g} s"
            code = self.channel.recv_exit_status()
            err = b""
            self.channel.settimeout(self.timeout)
            for _ in range(STDERR_READS):  # a node writing without end is not read to it
                chunk = self.channel.recv_stderr(65536)
                if not chunk:
                    break
                err = (err + chunk)[-TAIL_CHARS:]
            return code, err.decode(errors="replace")
        except socket.timeout:
            return -1, f"no end of its stderr within {self.timeout:g} s"
        finally:
            self.channel.close()

    def abandon(self) -> None:
        self.channel.close()


def open_session(conn: Connection, command: str) -> Session:
    return ChannelSession(conn, command)


def clock_offset(session: Session, samples: int = 5, agent: bool = False) -> tuple[float, float]:
    """(offset, uncertainty): the node's clock minus ours, NTP-style over a session that
    answers each line with its clock (the probe's, or with ``agent`` the node's agent's:
    controller/nodes/agents.py). The session is set up before the first sample, so the
    round trips are symmetric; the shortest wins and half of it bounds the error."""
    best: Optional[tuple[float, float]] = None
    ask = encode_line(AgentClockAsk() if agent else ClockAsk()) + "\n"
    for _ in range(samples):
        before = time.time()
        session.send(ask)
        answer = session.readline()
        half = (time.time() - before) / 2
        at = _agent_clock(answer) if agent else getattr(decode_clock(answer), "at", None)
        if at is None:
            who = "agent" if agent else "probe"
            raise StepError(f"the {who}'s clock answered {answer.strip()[:80]!r}")
        if best is None or half < best[1]:
            best = (at - (before + half), half)
    assert best is not None
    return best


def _agent_clock(line: str) -> Optional[float]:
    try:
        said = decode_line(line)
    except MessageError:
        return None
    return said.at if isinstance(said, AgentClock) else None


def probe_node(
    conn: Connection, node: Node, asked: list[str]
) -> tuple[ProbeFacts, float, float, Session]:
    """The facts of ``node`` about the files ``asked`` (its workdir claimed when its
    Python can run the worker), its clock offset and the offset's uncertainty, and the
    probe's session, still open: the caller finishes it or hands it over to the node's
    agent (controller/nodes/agents.py). StepError saying why when the workdir is refused or
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
            raise StepError(printable(err.strip()))
        said = tail(err)
        raise StepError(f"the probe exited {code}" + (f": {said}" if said else ""))
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


@dataclass(frozen=True)
class NodeInfo:
    """What ``push`` learnt about a node; saved in the run's hosts.json."""

    hostname: str
    platform: str
    python: str
    clock_offset: float  # node clock minus controller clock, seconds
    clock_error: float  # half the round trip of the best sample: the offset's uncertainty
    uploaded: int
    provisioned: bool
    machine: Optional[str] = None  # /etc/machine-id, else the hostname
    workdir_id: Optional[tuple[int, int]] = None  # (st_dev, st_ino) of the workdir

    def to_dict(self) -> dict:
        return asdict(self)
