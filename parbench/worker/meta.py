"""The metadata phase (mdtest-like): each client creates, stats, lists and deletes
``files`` files of ``size`` bytes in a directory of its own, timing every operation.

The kinds run one after another in each client (all creates, then all stats, one
listing, all deletes), behind the common start; each kind's count, first start and last
end go into the record (``ops``) so that the controller can give ops/s per kind, and
each operation's time goes into the kind's latency histogram. The directory is emptied
of an earlier run's files during set-up and removed at the end (untimed).
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from .clients import Identity, Job, WaitForStart, no_wait
from .meter import Meter
from .protocol import META_OPS, Measure
from .results import ClientResult, error_detail, one_line
from .storage import Storage, StorageConfig, describe_error, make_storage


@dataclass(frozen=True)
class MetaJob(Job):
    identity: Identity  # path: the client's directory
    storage: StorageConfig
    files: int
    size: int = 0
    measure: Measure = Measure()

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        result = self.identity.draft(files=0)
        meter = Meter(self.measure)
        ops: Dict[str, dict] = {}
        folder = self.identity.path
        names = [posixpath.join(folder, f"f{i}") for i in range(self.files)]
        payload = [b"m" * self.size] if self.size else []
        storage: Optional[Storage] = None
        try:
            storage = make_storage(self.storage)
            storage.connect()
            storage.delete_tree(folder)  # an earlier run's files
            storage.mkdirs(folder)
            result.ready = time.time()
            wait_for_start()
            meter.begin()
            result.start = time.time()
            s = storage
            timed = _Timed(meter, ops)
            timed("create", names, lambda p: s.write_stream(p, payload))
            result.files = self.files
            timed("stat", names, s.size)
            timed("list", [folder], lambda p: _listed(s, p, self.files))
            timed("delete", names, s.delete)
            result.end = time.time()
            result.bytes = self.files * self.size
            storage.delete_tree(folder)
        except Exception as exc:
            result.end = time.time() if result.start else 0.0
            done = ", ".join(f"{op['count']} {kind}" for kind, op in ops.items())
            cause = describe_error(exc) + (f" after {done}" if done else "")
            if storage is not None and result.start:
                cause += "; " + _removed(storage, folder)
            result.status = "error"
            result.error = one_line(self.identity.error_text(cause))
            result.detail = error_detail(exc)
        finally:
            if storage is not None:
                storage.close()
        result.ops = ops or None
        result.latency = meter.latency_record() if result.start else None
        return result.freeze()


class _Timed:
    """Run one kind of operation over some paths, timing each, counting into ``ops``."""

    def __init__(self, meter: Meter, ops: Dict[str, dict]) -> None:
        self.meter, self.ops = meter, ops

    def __call__(self, kind: str, paths: List[str], op: Callable[[str], object]) -> None:
        assert kind in META_OPS
        entry = self.ops[kind] = {"count": 0, "start": time.time(), "end": 0.0}
        try:
            for path in paths:
                began = self.meter.clock()
                op(path)
                self.meter.since(kind, began)
                entry["count"] += 1
        finally:  # a failed kind still has its span: the operations done so far
            entry["end"] = time.time()


def _removed(storage: Storage, folder: str) -> str:
    """Remove what a failed client left in its directory; say how that went."""
    try:
        storage.delete_tree(folder)
        return f"{folder} removed"
    except Exception as exc:
        return f"{folder} may remain: {describe_error(exc)}"


def _listed(storage: Storage, folder: str, files: int) -> None:
    found = len(storage.names(folder))
    if found != files:
        raise RuntimeError(f"list {folder}: {found} entries, {files} expected")
