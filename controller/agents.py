"""The node agents of this process (worker/agent.py).

The push's probe session becomes the node's agent once the node is up to date; the
run's locks are then taken and given back as one line each way on it, instead of a new
SSH session and a Python start-up on every node for each (on the testbed's 2 cores that
was about a quarter of ``fab write``'s time). A node without an agent (not pushed by this
process, or its agent gone) is asked with ``python -m worker lock`` as before.
"""

from __future__ import annotations

import atexit
import threading
from contextlib import suppress
from typing import Optional

from worker.protocol import AGENT_READY

from .inventory import Node
from .nodeprobe import Session

#: the line that makes the probe exec the agent (worker/probe.py's AGENT)
BECOME_AGENT = "agent\n"


class Agents:
    def __init__(self) -> None:
        self._sessions: dict[tuple, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(node: Node) -> tuple:
        return (node.host, node.port, node.user, node.workdir)

    def hand_over(self, node: Node, session: Session) -> bool:
        """Make the probe's ``session`` on ``node`` its agent (the probe execs it);
        whether it answered. A session that did not is finished."""
        try:
            session.send(BECOME_AGENT)
            ready = session.readline().strip() == AGENT_READY
        except OSError:
            ready = False
        if not ready:
            with suppress(Exception):
                session.finish()
            return False
        with self._lock:
            old = self._sessions.get(self._key(node))
            self._sessions[self._key(node)] = session
        if old is not None:
            with suppress(Exception):
                old.finish()
        return True

    def ask(self, node: Node, request: str) -> Optional[str]:
        """The agent's one-line answer to ``request``; None when ``node`` has no agent
        or it is gone (it is then forgotten)."""
        with self._lock:
            session = self._sessions.get(self._key(node))
        if session is None:
            return None
        try:
            session.send(request + "\n")
            answer = session.readline()
        except OSError:
            answer = ""
        if not answer:
            self.forget(node)
            return None
        return answer.rstrip("\n")

    def forget(self, node: Node) -> None:
        with self._lock:
            session = self._sessions.pop(self._key(node), None)
        if session is not None:
            with suppress(Exception):
                session.finish()

    def close(self) -> None:
        """End every agent (its stdin closed: it exits)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            with suppress(Exception):
                session.finish()


#: this process's agents; ended at exit, after the locks are given back through them
#: (atexit runs the other way round from registration; the locks register later)
AGENTS = Agents()
atexit.register(AGENTS.close)
