"""The node agents of this process (worker/agent.py), held by its fleet
(controller/nodes/fleet.py).

The push's probe session becomes the node's agent once the node is up to date; the
run's locks are then taken and given back as one line each way on it, and every phase of
the command runs through it (a child forked from the agent), instead of a new SSH
session, shell and Python start-up on every node for each (on the testbed's 2 cores those
were most of ``fab write``'s own time). A node without an agent (not pushed by this
process, or its agent gone) is asked with ``python -m worker lock`` and ``python -m
worker run`` over a session of their own, as before.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from operator import methodcaller
from typing import IO, Iterator, Optional, Sequence, TextIO

from invoke.watchers import StreamWatcher

from parbench.worker.protocol import (
    AgentDone,
    AgentReady,
    AgentStarted,
    BecomeAgent,
    MessageError,
    RunAsk,
    Stderr,
    decode_line,
    encode_line,
    kind,
)

from ..run.inventory import Node
from .nodeoutput import Kept
from .nodeprobe import SESSION_TIMEOUT, Session, clock_offset
from .remote import StepError, close_each, connection_key, readable

#: how often a running phase's stop pipe is looked at
POLL = 0.05
#: lines of a phase read ahead of the controller's following them
LINES_AHEAD = 1000


@dataclass(frozen=True)
class Finished:
    """A phase the agent ran, as Fabric's ``Result`` has it."""

    stdout: str
    stderr: str
    exited: int


class Agents:
    def __init__(self) -> None:
        self._sessions: dict[tuple, Session] = {}
        self._busy: set[int] = set()  # id() of the sessions a request is being read on
        self._lock = threading.Lock()

    def hand_over(self, node: Node, session: Session) -> bool:
        """Make the probe's ``session`` on ``node`` its agent (the probe execs it);
        whether it answered. A session that did not is closed."""
        try:
            session.send(encode_line(BecomeAgent()) + "\n")
            ready = _said(session.readline()) == AgentReady()
        except OSError:
            ready = False
        if not ready:
            close_each([session], _abandon)
            return False
        with self._lock:
            old = self._sessions.get(connection_key(node))
            self._sessions[connection_key(node)] = session
        close_each([old], _abandon)
        return True

    def has(self, node: Node) -> bool:
        """Whether ``node`` has an agent here."""
        with self._lock:
            return connection_key(node) in self._sessions

    def ask(self, node: Node, request: str) -> Optional[str]:
        """The agent's one-line answer to ``request`` within SESSION_TIMEOUT; None when
        ``node`` has no agent, or it is busy with another request (a phase: one reader
        on a channel), or gone or silent (it is then forgotten)."""
        with self._borrowed(node) as session:
            if session is None:
                return None
            try:
                session.timeout = SESSION_TIMEOUT  # whatever a phase left there
                session.send(request + "\n")
                answer = session.readline()
            except OSError:
                answer = ""
        if not answer:
            self.forget(node, session)
            return None
        return answer.rstrip("\n")

    def clock(self, node: Node, samples: int = 3) -> Optional[tuple[float, float]]:
        """(offset, uncertainty) of ``node``'s clock measured again over its agent
        (nodeprobe.clock_offset); None when it has no agent, or it is busy, or gone or
        silent or does not answer with its clock (it is then forgotten)."""
        with self._borrowed(node) as session:
            if session is None:
                return None
            try:
                session.timeout = SESSION_TIMEOUT
                return clock_offset(session, samples, agent=True)
            except (OSError, StepError):
                pass
        self.forget(node, session)
        return None

    def _take(self, node: Node) -> Optional[Session]:
        """The agent of ``node``, now busy with the caller's request; None when it has
        none or it is busy."""
        with self._lock:
            session = self._sessions.get(connection_key(node))
            if session is None or id(session) in self._busy:
                return None
            self._busy.add(id(session))
            return session

    def _free(self, session: Session) -> None:
        with self._lock:
            self._busy.discard(id(session))

    @contextmanager
    def _borrowed(self, node: Node) -> Iterator[Optional[Session]]:
        """The agent of ``node`` (:meth:`_take`), given back when the caller is done."""
        session = self._take(node)
        try:
            yield session
        finally:
            if session is not None:
                self._free(session)

    def run(
        self,
        node: Node,
        save: str,
        request: str,
        out: TextIO,
        err: TextIO,
        watchers: Sequence[StreamWatcher],
        stdin: Optional[IO[bytes]],
        timeout: float,
    ) -> Optional[Finished]:
        """Run the phase ``request`` (kept at ``save`` on the node) through the node's
        agent: its lines to ``out`` and ``err``, each stdout line to ``watchers`` (their
        answers sent back), what arrives on ``stdin`` forwarded. None when the node has no
        agent (nothing was run); StepError when the agent ends or ``timeout`` passes
        before the phase does (it is then forgotten: its end stops the phase there)."""
        with self._borrowed(node) as session:
            if session is None:
                return None
            # a phase may be silent for long (the barrier, a slow request): only the phase's
            # own timeout ends it, not the session's (applied with this send)
            session.timeout = None
            try:
                session.send(encode_line(RunAsk(save, request)) + "\n")
            except OSError:
                self.forget(node, session)
                return None
            # bounded: a node that writes faster than it is followed waits (SSH's window)
            lines: queue.Queue[str] = queue.Queue(maxsize=LINES_AHEAD)
            over = threading.Event()

            def read() -> None:  # its stdout, up to the end of the phase
                line = "-"
                while line and kind(line) is not AgentDone and not over.is_set():
                    try:
                        line = session.readline()
                    except Exception:  # noqa: BLE001 - the stream is gone: said as its end
                        line = ""
                    while not over.is_set():
                        with suppress(queue.Full):
                            lines.put(line, timeout=POLL)
                            break

            threading.Thread(target=read, daemon=True).start()
            try:
                return self._follow(node, session, lines, out, err, watchers, stdin, timeout)
            except BaseException:
                self.forget(node, session)  # a reader left on it would take the next answer
                raise
            finally:
                over.set()
                session.timeout = SESSION_TIMEOUT

    def _follow(
        self,
        node: Node,
        session: Session,
        lines: queue.Queue[str],
        out: TextIO,
        err: TextIO,
        watchers: Sequence[StreamWatcher],
        stdin: Optional[IO[bytes]],
        timeout: float,
    ) -> Finished:
        # kept within bounds (controller/nodes/nodeoutput.py): the records and the last lines
        said, errors = Kept(), Kept()
        deadline = time.monotonic() + timeout
        started = False  # before the child says so, what is sent could reach the agent
        while True:
            # a deadline for the phase, however much the node writes
            if time.monotonic() > deadline:
                self.forget(node, session)
                raise StepError(f"timed out after {timeout:g} s (defaults.phase_timeout)")
            if started and stdin is not None and readable(stdin.fileno()):
                data = os.read(stdin.fileno(), 4096)
                with suppress(OSError):
                    session.send(data.decode())
            try:
                line = lines.get(timeout=POLL)
            except queue.Empty:
                continue
            if not line:
                self.forget(node, session)
                raise StepError("the node's agent ended before the phase did")
            # only the agent's own lines are read here (records are read at the end)
            told = _said(line) if kind(line) in (AgentDone, AgentStarted, Stderr) else None
            if isinstance(told, AgentDone):
                return Finished(said.text(), errors.text(), told.code)
            if isinstance(told, AgentStarted):
                started = True
                continue
            if isinstance(told, Stderr):
                errors.add(told.text + "\n")  # whole lines (worker/agent.py's Tagged)
                err.write(told.text + "\n")
                continue
            said.add(line)
            out.write(line)
            for watcher in watchers:
                for answer in watcher.submit(line):
                    with suppress(OSError):
                        session.send(answer)

    def forget(self, node: Node, session: Optional[Session] = None) -> None:
        """End the agent of ``node`` (only when it is ``session``, if given: a thread
        left behind must not end the agent a later push handed over)."""
        with self._lock:
            found = self._sessions.get(connection_key(node))
            if found is None or (session is not None and found is not session):
                return
            del self._sessions[connection_key(node)]
        close_each([found], _abandon)

    def close(self) -> None:
        """End every agent (its stdin closed: it exits)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        close_each(sessions, _abandon)


def _said(line: str) -> object:
    """The message ``line`` is, None when it is none or cannot be read (a line for
    people: shown as it is)."""
    try:
        return decode_line(line)
    except MessageError:
        return None


#: a session given up: closed without waiting for the node's process
_abandon = methodcaller("abandon")
