"""The locks a ``fab`` process holds on a run: the storage root ``{dst}`` and every node's
workdir (the files themselves are made by ``python -m worker lock``, worker/lock.py).

The storage root is locked first, on one node, so of two runs started together one wins
whole and the other is refused whole, naming the holder (exit 2). A holder is gone when
its lease has expired, or when it was this controller host and its pid is not running:
then its locks are taken over, and that is said. The locks are held for the whole
``fab`` command (a chained ``write read verify`` is not interleaved with another run) and
given back when it exits.
"""

from __future__ import annotations

import atexit
import getpass
import json
import os
import secrets
import socket
import sys
import time
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from fabric import Connection

from worker.protocol import LOCK_REPLY, Holder, LockRequest, StorageConfig

from . import stopping
from .agents import AGENTS
from .inventory import Inventory, Node
from .nodeoutput import printable
from .plan import worker_command
from .remote import StepError, on_nodes


class LockHeld(RuntimeError):
    """Another run holds a lock this one needs (bad moment, not a benchmark failure)."""


class LockFailed(RuntimeError):
    """A lock could not be taken or checked for another reason; the message says where."""


def user_name() -> str:
    """This controller's user name; the uid where it has no passwd entry."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def describe(holder: dict) -> str:
    return (
        f"run {holder['run_id']} (controller {holder['controller']} pid {holder['pid']}, "
        f"user {holder['user']}, since {_when(holder['since'])})"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def machine_id() -> str:
    """This controller's machine id (host names repeat, in containers for one)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with suppress(OSError):
            found = Path(path).read_text().strip()
            if found:
                return found
    return socket.gethostname()


def gone(holder: dict, now: Optional[float] = None) -> Optional[str]:
    """Why ``holder`` no longer holds anything, or None while it may still be running.
    Its pid is asked about only when it ran on this very machine."""
    if holder["expires"] < (time.time() if now is None else now):
        return f"its lease ended at {_when(holder['expires'])}"
    here = holder["controller"] == socket.gethostname()
    if here and holder.get("machine", "") in ("", machine_id()) and not _alive(holder["pid"]):
        return f"pid {holder['pid']} is not running on {holder['controller']}"
    return None


#: one token for all this process's locks: a chained command (write ... clean) renews
#: its own locks instead of being refused by them
_TOKEN = secrets.token_hex(8)


def lease(inventory: Inventory) -> float:
    """How long a holder may keep a lock without renewing it: the longest one phase step
    can take (verify runs two phases) plus the start barrier's wait, with a margin."""
    s = inventory.settings
    return 2 * s.phase_timeout + s.ready_timeout + 60


class RunLocks:
    """The locks of this process on one run, over the nodes it works on."""

    def __init__(self, inventory: Inventory, run_id: str) -> None:
        self.inventory = inventory
        now = time.time()
        self.holder = Holder(
            run_id=run_id,
            token=_TOKEN,
            controller=socket.gethostname(),
            pid=os.getpid(),
            user=user_name(),
            since=now,
            expires=now + lease(inventory),
            machine=machine_id(),
        )
        self.nodes: dict[str, Node] = {}  # whose workdir this process holds
        self.dst_node: Optional[Node] = None  # where the storage root's lock was taken
        atexit.register(self.release)

    def _request(self, node: Node, action: str, dst: bool, take_over: Sequence[str]) -> str:
        s = self.inventory.settings
        storage = None
        if dst:
            timeout = min(s.phase_timeout, 60.0)
            if s.backend == "alluxio":
                storage = StorageConfig(
                    "alluxio", node.proxy.host, node.proxy.port, timeout=timeout
                )
            else:
                storage = StorageConfig("posix", root=node.posix_root, timeout=timeout)
        return LockRequest(
            action=action,
            holder=self.holder,
            workdir=node.workdir,
            storage=storage,
            dst=s.dst if dst else None,
            take_over=tuple(take_over),
        ).to_json()

    def _ask(self, nodes: Sequence[Node], action: str, dst_at: Optional[str], take_over=()) -> dict:
        """Node id -> its reply (LockFailed naming the first node that could not answer);
        the node ``dst_at`` also takes or gives back ``{dst}``'s lock."""

        def one(conn: Connection, node: Node) -> dict:
            request = self._request(node, action, node.id == dst_at, take_over)
            told = AGENTS.ask(node, f"lock {request}")  # None: no agent, run the worker
            if told is None:
                out = conn.run(worker_command(node, "lock", request), hide=True, warn=True)
                told = out.stdout
            for line in told.splitlines():
                if line.startswith(LOCK_REPLY + " "):
                    return json.loads(line[len(LOCK_REPLY) + 1 :])
            raise StepError(f"no answer to the lock request: {printable(told.strip()[-200:])}")

        try:
            outcomes = on_nodes(self.inventory, f"lock {action}", one, nodes)
        except stopping.Interrupted as stop:
            if action == "acquire":
                self._record(nodes, {o.node.id: o.value for o in stop.outcomes if o.value})
            raise
        replies = {o.node.id: o.value for o in outcomes if o.value is not None}
        if action == "acquire":
            self._record(nodes, replies)
        failed = [o.failure for o in outcomes if o.failure is not None]
        if failed:
            if action == "acquire":
                self.release()
            f = failed[0]
            raise LockFailed(f"cannot {action} the run's locks on {f.node} ({f.host}): {f.cause}")
        return replies

    def acquire(self, nodes: Sequence[Node]) -> None:
        """Hold ``{dst}`` (on the first node) and the workdirs of ``nodes``, renewing what
        this process holds already; LockHeld naming the holder of any that is taken."""
        if not nodes:
            return
        now = time.time()
        self.holder = replace(self.holder, expires=now + lease(self.inventory))
        # {dst} is one file in storage, reached through any node: the first ready one
        self._take(nodes[:1], dst_at=nodes[0].id)
        self._take(nodes[1:], dst_at=None)

    def _take(self, nodes: Sequence[Node], dst_at: Optional[str]) -> None:
        if not nodes:
            return
        replies = self._ask(nodes, "acquire", dst_at)
        stale = {
            holder["token"]: why
            for reply in replies.values()
            for place in (reply["workdir"], reply["dst"])
            if place and (holder := place.get("holder")) and (why := gone(holder))
        }
        if stale:
            retry = [n for n in nodes if _refused(replies[n.id])]
            replies.update(self._ask(retry, "acquire", dst_at, tuple(stale)))
        refused: list[tuple[Node, str, dict]] = []
        for node in nodes:
            for kind in ("workdir", "dst"):
                place = replies[node.id][kind]
                if place is None:
                    continue
                if place.get("replaced"):
                    why = gone(place["replaced"]) or "gone"
                    print(
                        f"[{node.id}] took over the lock {place['path']} of "
                        f"{describe(place['replaced'])}: {why}",
                        file=sys.stderr,
                    )
                if not place["held"]:
                    refused.append((node, kind, place))
        if refused:  # give back what this batch did get, and say who holds the rest
            self.release()
            node, kind, place = refused[0]
            what = "storage root" if kind == "dst" else "workdir"
            if "error" in place:
                raise LockFailed(
                    f"cannot lock the {what} {place['path']} on {node.id}: {place['error']}"
                )
            raise LockHeld(
                f"the {what} {place['path']} (on {node.id}) is locked by "
                f"{describe(place['holder'])}; wait for it to finish, or stop it"
            )

    def _record(self, nodes: Sequence[Node], replies: dict) -> None:
        """Note what ``replies`` say this process now holds (so that it is given back)."""
        for node in nodes:
            reply = replies.get(node.id)
            if reply is None:
                continue
            if reply["workdir"]["held"]:
                self.nodes[node.id] = node
            if reply["dst"] is not None and reply["dst"]["held"]:
                self.dst_node = node

    def release(self) -> None:
        """Give back every lock this process holds (others' locks are left alone)."""
        held, self.nodes = list(self.nodes.values()), {}
        dst_node, self.dst_node = self.dst_node, None
        if dst_node is not None and dst_node.id not in {n.id for n in held}:
            held.append(dst_node)  # {dst} held where the workdir was refused
        if not held:
            return
        try:  # in one round: the order of giving back does not matter
            self._ask(held, "release", None if dst_node is None else dst_node.id)
        except LockFailed as exc:
            print(f"warning: {exc}; the lease ends the lock", file=sys.stderr)
        except (KeyboardInterrupt, stopping.Interrupted):
            print(
                "warning: interrupted while giving back the run's locks: the next run takes "
                "them over (this controller's pid is gone) or their lease ends them",
                file=sys.stderr,
            )


def _refused(reply: dict) -> bool:
    return any(p is not None and not p["held"] for p in (reply["workdir"], reply["dst"]))


#: this process's locks, per run
_HELD: dict[str, RunLocks] = {}


def hold(inventory: Inventory, run_id: str, nodes: Sequence[Node]) -> RunLocks:
    """Hold run ``run_id``'s locks on ``nodes`` for the rest of this process."""
    locks = _HELD.get(run_id)
    if locks is None:
        locks = _HELD[run_id] = RunLocks(inventory, run_id)
    locks.acquire(nodes)
    return locks
