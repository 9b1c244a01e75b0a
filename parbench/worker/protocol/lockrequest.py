"""The lock request the controller sends a node's agent (worker/lock.py takes, renews
and gives back the locks), and the holder it writes into a lock file. Part of the
contract (worker/protocol/). Stdlib only, Python 3.9+."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .request import StorageConfig
from .typed import _absolute, _choice, _Message, _parse, _refuse, decode

LOCK_SCHEMA = "parbench.lock/1"
#: an empty lock file older than this (seconds) is a crash's leftover, not a lock being
#: written (its create, write and fsync take milliseconds)
EMPTY_LOCK_STALE = 10.0
LOCK_ACTIONS = ("acquire", "renew", "release")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: written into the lock file, shown to whoever is refused."""

    run_id: str
    token: str  # one controller process on one run
    controller: str  # its host name
    pid: int
    user: str
    since: float  # epoch seconds, controller clock (shown, never compared with a node's)
    expires: float  # since + the lease, controller clock (shown; older holders: the lease)
    machine: str = ""  # the controller's machine id: host names repeat (containers)
    #: seconds the lock stays without being renewed; judged by the node, on its own clock,
    #: against the lock file's age (0: expires - since, as an older parbench wrote it)
    lease: float = 0.0
    pidns: str = ""  # the controller's pid namespace (/proc/self/ns/pid): pids repeat too


@dataclass(frozen=True)
class LockRequest(_Message):
    """Take, renew or give back the locks of a run on one node: its workdir's, and (on one
    node only) the storage root's ``{dst}``. A holder whose token is in ``take_over`` is
    gone (the controller decided) and is replaced. ``renew`` only refreshes a lock the
    holder still has (never takes one)."""

    action: str
    holder: Holder
    workdir: str
    storage: Optional[StorageConfig] = None  # with dst: lock the storage root too
    dst: Optional[str] = None
    take_over: Tuple[str, ...] = ()
    schema: str = LOCK_SCHEMA

    def check(self) -> LockRequest:
        if self.schema != LOCK_SCHEMA:
            _refuse("lock.schema", repr(LOCK_SCHEMA), self.schema)
        _choice("lock.action", self.action, LOCK_ACTIONS)
        _absolute("lock.workdir", self.workdir)
        if (self.storage is None) != (self.dst is None):
            _refuse("lock.dst", "a storage root exactly when storage is given", self.dst)
        if self.storage is not None:
            self.storage.check("lock.storage")
            _absolute("lock.dst", self.dst)
        return self

    @classmethod
    def from_json(cls, text: str) -> LockRequest:
        return decode(cls, _parse(text, "lock request"), "lock").check()
