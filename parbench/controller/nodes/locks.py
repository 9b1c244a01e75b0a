"""The locks a ``fab`` process holds on a run: the storage root ``{dst}`` and every node's
workdir (the files themselves are made by ``python -m worker lock``, worker/lock.py).

A node's workdir is locked by push, through the node's probe (worker/probe.py), before
anything in it changes; a run refused there is refused whole once every node is done,
naming the holder (exit 2), having changed nothing where it did not hold the lock. A
holder that is gone (or an empty file a crash left) is taken over by the probe, asked
again with its token, before anything changes: moved aside, checked, deleted, ours made
where none is (of two runs judging one stale lock, one goes on). The storage
root is locked next, on one node, so of two runs on the same ``{dst}`` started together
one wins whole and the other is refused whole. A holder is gone when its lease has ended,
judged on one clock: the node's, by the age of the lock file it last wrote or renewed
(never this controller's clock against another's); or when it ran in this very pid
namespace of this machine and its pid is not running: then its locks are taken over, and
that is said. The locks are held for the whole ``fab`` command (a chained ``write read
verify`` is not interleaved with another run), renewed between its phases and iterations
(:func:`renew`), and given back when it exits (they are kept in its fleet,
controller/nodes/fleet.py, which gives them back first when it closes).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from dataclasses import replace
from typing import Callable, Optional, Sequence
from urllib.parse import urlsplit

from fabric import Connection

from parbench.worker.protocol import (
    EMPTY_LOCK_STALE,
    Holder,
    LockAsk,
    LockRequest,
    StorageConfig,
    encode_line,
)

from ..run import say
from ..run.inventory import Inventory, Node, Settings
from ..run.plan import storage_config, worker_command
from ..run.run import user_name
from ..run.settings import Proxy
from . import stopping
from .fleet import current, on_nodes
from .holders import (
    as_error,
    cannot_lock,
    describe,
    gone,
    lease,
    machine_id,
    pid_namespace,
    refused,
    reply_in,
)


class LockHeld(RuntimeError):
    """Another run holds a lock this one needs (bad moment, not a benchmark failure)."""


class LockFailed(RuntimeError):
    """A lock could not be taken or checked for another reason; the message says where."""


#: one token for all this process's locks: a chained command (write ... clean) renews
#: its own locks instead of being refused by them
_TOKEN = secrets.token_hex(8)


#: renew the locks between iterations once this long has passed since they were last:
#: an iteration ends within the lease (see lease()) less this margin
RENEW_AFTER = 30.0


#: the path where Alluxio's REST proxy serves its S3 API
ALLUXIO_S3 = "/api/v1/s3"


def lock_storage(settings: Settings, node: Node, timeout: float) -> StorageConfig:
    """Where ``{dst}``'s lock is taken: the run's storage, but for the s3 backend on
    Alluxio's S3 API (no ``s3_endpoint``, or one at ``http://HOST:PORT/api/v1/s3``), which
    ignores ``If-None-Match``: there through the REST proxy at that host and port, which
    serves the same namespace (a bucket is a top-level directory) and whose rename fails
    where a file exists."""
    endpoint = settings.s3_endpoint
    if settings.backend == "native":  # StressBench writes through the same cluster
        return storage_config(replace(settings, backend="alluxio"), node, timeout)
    if settings.backend == "s3" and endpoint is None:
        return storage_config(replace(settings, backend="alluxio"), node, timeout)
    if settings.backend == "s3" and endpoint is not None:
        url = urlsplit(endpoint)
        if url.scheme == "http" and url.path.rstrip("/") == ALLUXIO_S3 and url.hostname:
            proxy = Proxy(url.hostname, url.port or 80)
            rest = replace(settings, backend="alluxio")
            return storage_config(rest, replace(node, proxy=proxy), timeout)
    return storage_config(settings, node, timeout)


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
            lease=lease(inventory),
            pidns=pid_namespace(),
        )
        self.nodes: dict[str, Node] = {}  # whose workdir this process holds
        self.dst_node: Optional[Node] = None  # where the storage root's lock was taken
        self.refusals: list[Exception] = []  # LockHeld/LockFailed met while pushing
        self._guard = threading.Lock()
        self.renewed = time.monotonic()  # when the locks were last taken or renewed

    def take_workdir(self, node: Node, ask: Callable[[str], str]) -> None:
        """Hold ``node``'s workdir before push changes anything in it, through ``ask``
        (a request line to the node's probe -> its reply line). A holder that is gone (or
        an empty file a crash left) is taken over by the probe, asked again with its token,
        before anything changes: of two runs judging one stale lock only one goes on.
        LockHeld (or LockFailed) otherwise: it is also kept, for :meth:`raise_refusal` to
        refuse the whole run once every node is done."""

        def asked(take_over: tuple[str, ...] = ()) -> dict:
            request = self._request(node, "acquire", False, take_over)
            place: dict = reply_in(ask(encode_line(LockAsk(request))))["workdir"]
            return place

        place = asked()
        holder, age = place.get("holder"), place.get("age")
        why: Optional[str] = None
        if not place["held"] and "error" not in place:
            if holder is None and age is not None and age >= EMPTY_LOCK_STALE:
                why = f"an empty lock file a crash left ({age:.0f} s old)"
            elif holder is not None:
                why = gone(holder, age)
        if why is not None:  # stale: taken over by the probe, or found taken meanwhile
            place = asked(("" if holder is None else holder["token"],))
            if place["held"] and place.get("replaced") is not None:
                say.err(f"[{node.id}] took over the lock {place['path']} of "
                        f"{describe(place['replaced'])}: {why}")  # fmt: skip
            elif place["held"]:
                say.err(f"[{node.id}] cleared the lock file {place['path']}: {why}")
        if place["held"]:
            with self._guard:
                self.nodes[node.id] = node
            return
        if "error" in place:
            refusal: Exception = LockFailed(cannot_lock("workdir", place, node))
        elif place.get("holder") is None:  # an empty lock file, not yet stale
            refusal = LockFailed(cannot_lock("workdir", as_error(place), node))
        else:
            refusal = _held("workdir", place, node)
        with self._guard:
            self.refusals.append(refusal)
        raise refusal

    def raise_refusal(self) -> None:
        """If a workdir was refused while pushing: give back every lock, raise the first
        refusal (nothing was changed where this run did not hold the lock)."""
        if self.refusals:
            self.release()
            raise self.refusals[0]

    def _request(self, node: Node, action: str, dst: bool, take_over: Sequence[str]) -> str:
        s = self.inventory.settings
        storage = None
        if dst:
            timeout = min(s.phase_timeout, 60.0)
            storage = lock_storage(s, node, timeout)
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
            told = current().agents.ask(node, encode_line(LockAsk(request)))  # None: no agent
            if told is None:
                out = conn.run(worker_command(node, "lock", request), hide=True, warn=True)
                told = out.stdout
            return reply_in(told)

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
        self.renewed = time.monotonic()

    def renew(self, every: float = RENEW_AFTER) -> None:
        """Renew every lock this process holds, if more than ``every`` seconds have passed
        since they were last: a lock's age on its node starts again. One that is no longer
        this process's (its lease ran out and another run took it over) is LockFailed,
        naming it and its holder; a node that cannot be asked is a warning (the lease
        still runs)."""
        if time.monotonic() - self.renewed < every:
            return
        held = list(self.nodes.values())
        dst_node = self.dst_node
        if dst_node is not None and dst_node.id not in {n.id for n in held}:
            held.append(dst_node)
        if not held:
            return
        self.holder = replace(self.holder, expires=time.time() + lease(self.inventory))
        try:
            replies = self._ask(held, "renew", None if dst_node is None else dst_node.id)
        except LockFailed as exc:
            say.err(f"warning: {exc}; the lock's lease still runs")
            return
        self.renewed = time.monotonic()
        for node in held:
            for kind in ("workdir", "dst"):
                place = replies[node.id][kind]
                if place is None or place["held"]:
                    continue
                what = "storage root" if kind == "dst" else "workdir"
                if kind == "workdir" and node.id not in self.nodes:
                    continue  # {dst} only there: its workdir is not this process's
                if "error" in place:
                    raise LockFailed(
                        f"cannot renew the lock of the {what} {place['path']} on {node.id}: "
                        f"{place['error']}"
                    )
                holder = place.get("holder")
                now = f"locked by {describe(holder)}" if holder else "gone"
                raise LockFailed(
                    f"lost the lock of the {what} {place['path']} on {node.id}: it is {now}; "
                    "another run may be at work there, so this one stops"
                )

    def _take(self, nodes: Sequence[Node], dst_at: Optional[str]) -> None:
        if not nodes:
            return
        replies = self._ask(nodes, "acquire", dst_at)
        stale = {
            holder["token"]: why
            for reply in replies.values()
            for place in (reply["workdir"], reply["dst"])
            if place and (holder := place.get("holder")) and (why := gone(holder, place.get("age")))
        }
        if stale:
            retry = [n for n in nodes if refused(replies[n.id])]
            replies.update(self._ask(retry, "acquire", dst_at, tuple(stale)))
        denied: list[tuple[Node, str, dict]] = []
        for node in nodes:
            for kind in ("workdir", "dst"):
                place = replies[node.id][kind]
                if place is None:
                    continue
                if place.get("replaced"):
                    why = stale.get(place["replaced"]["token"], "gone")
                    say.err(
                        f"[{node.id}] took over the lock {place['path']} of "
                        f"{describe(place['replaced'])}: {why}"
                    )
                if place.get("cleared"):
                    say.err(
                        f"[{node.id}] cleared the lock file {place['path']}: {place['cleared']}"
                    )
                if not place["held"]:
                    denied.append((node, kind, place))
        if denied:  # give back what this batch did get, and say who holds the rest
            self.release()
            node, kind, place = denied[0]
            what = "storage root" if kind == "dst" else "workdir"
            if "error" in place:
                raise LockFailed(cannot_lock(what, place, node))
            raise _held(what, place, node)

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
            say.err(f"warning: {exc}; the lease ends the lock")
        except (KeyboardInterrupt, stopping.Interrupted):
            say.err(
                "warning: interrupted while giving back the run's locks: the next run takes "
                "them over (this controller's pid is gone) or their lease ends them"
            )


def _held(what: str, place: dict, node: Node) -> LockHeld:
    return LockHeld(
        f"the {what} {place['path']} (on {node.id}) is locked by "
        f"{describe(place['holder'])}; wait for it to finish, or stop it"
    )


def of_run(inventory: Inventory, run_id: str) -> RunLocks:
    """This process's locks on run ``run_id`` (none held yet when new), kept in its
    fleet: given back when it closes."""
    held = current().locks
    locks = held.get(run_id)
    if locks is None:
        locks = held[run_id] = RunLocks(inventory, run_id)
    return locks


def hold(inventory: Inventory, run_id: str, nodes: Sequence[Node]) -> RunLocks:
    """Hold run ``run_id``'s locks on ``nodes`` for the rest of this process."""
    locks = of_run(inventory, run_id)
    locks.acquire(nodes)
    return locks


def held_runs() -> tuple[str, ...]:
    """The runs whose locks this process holds now (a chained ``fab write clean --runs``
    keeps its own run's folders on the nodes)."""
    found = current().locks.items()
    return tuple(run_id for run_id, held in found if held.nodes or held.dst_node)


def renew(run_id: str) -> None:
    """Renew run ``run_id``'s locks held by this process, when due (RunLocks.renew);
    nothing when it holds none."""
    locks = current().locks.get(run_id)
    if locks is not None:
        locks.renew()
