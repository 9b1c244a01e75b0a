"""``python -m worker lock REQUEST_JSON``: take or give back a run's locks on this node.

Two kinds of lock keep two runs apart, each a small file holding its
:class:`worker.protocol.Holder` as JSON, created only if absent (``O_EXCL`` on a local
file, a create that fails on an existing file in storage):

- ``{workdir}/.parbench-lock``: the node's workdir (records, read copies, runtime);
- ``{dst}/.parbench-lock`` in storage, beside the run's files, on one node only.

The worker only reports who holds a lock; whether that holder is gone is the
controller's call (it knows its own processes), which it passes back in ``take_over``.
Prints ``LOCK_REPLY`` and one JSON object: for each place, held or not and by whom.
"""

from __future__ import annotations

import json
import os
import posixpath
from contextlib import suppress
from dataclasses import asdict
from typing import Callable, Optional

from worker.protocol import LOCK_REPLY, ExitCode, Holder, LockRequest, RequestError, decode
from worker.storage import Storage, StorageError, describe_error, make_storage

LOCK_NAME = ".parbench-lock"


class _Place:
    """One lock file: create it if absent, read it, remove it."""

    def __init__(
        self,
        path: str,
        create: Callable[[bytes], bool],
        read: Callable[[], Optional[bytes]],
        remove: Callable[[], None],
    ) -> None:
        self.path, self.create, self.read, self.remove = path, create, read, remove

    def holder(self) -> Optional[Holder]:
        """Who holds it; None if it is gone; ValueError if it cannot be understood."""
        data = self.read()
        if data is None:
            return None
        try:
            return decode(Holder, json.loads(data.decode()), "holder")
        except (ValueError, RequestError) as exc:
            raise ValueError(f"lock file {self.path} cannot be read ({exc})") from None


def local_place(workdir: str) -> _Place:
    path = os.path.join(workdir, LOCK_NAME)

    def create(data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        return True

    def read() -> Optional[bytes]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as stream:
            return stream.read()

    def remove() -> None:
        with suppress(FileNotFoundError):
            os.remove(path)

    return _Place(path, create, read, remove)


def storage_place(storage: Storage, dst: str) -> _Place:
    path = posixpath.join(dst, LOCK_NAME)

    def create(data: bytes) -> bool:
        storage.mkdirs(dst)
        try:
            storage.write_stream(path, [data])
        except StorageError:
            if storage.exists(path):
                return False  # someone else's
            raise
        return True

    def read() -> Optional[bytes]:
        if not storage.exists(path):
            return None
        return b"".join(storage.read_stream(path, 1 << 16))

    def remove() -> None:
        if storage.exists(path):
            storage.delete(path)

    return _Place(path, create, read, remove)


def acquire(place: _Place, holder: Holder, take_over: tuple) -> dict:
    """Hold ``place`` for ``holder``: new, ours already (refreshed), or a gone holder's
    (replaced). Otherwise the current holder is reported."""
    data = json.dumps(asdict(holder), sort_keys=True).encode()
    replaced: Optional[Holder] = None
    for _ in range(3):  # a holder that leaves just now: try again
        if place.create(data):
            return {"path": place.path, "held": True, "replaced": _plain(replaced)}
        current = place.holder()
        if current is None:
            continue
        if current.token != holder.token and current.token not in take_over:
            return {"path": place.path, "held": False, "holder": asdict(current)}
        if current.token != holder.token:
            replaced = current
        place.remove()
    raise RuntimeError(f"lock file {place.path} keeps changing; try again")


def release(place: _Place, holder: Holder) -> dict:
    """Remove ``place`` if ``holder`` holds it; anyone else's lock stays."""
    current = place.holder()
    if current is not None and current.token == holder.token:
        place.remove()
        return {"path": place.path, "held": False}
    return {"path": place.path, "held": False, "holder": _plain(current)}


def _plain(holder: Optional[Holder]) -> Optional[dict]:
    return None if holder is None else asdict(holder)


def _one(request: LockRequest, place: _Place) -> dict:
    try:
        if request.action == "acquire":
            return acquire(place, request.holder, request.take_over)
        return release(place, request.holder)
    except (OSError, StorageError, ValueError, RuntimeError) as exc:
        return {"path": place.path, "held": False, "error": describe_error(exc)}


def main(text: str) -> int:
    """Answer the lock request ``text``; exit 0 once answered (held or not), 2 if bad."""
    try:
        request = LockRequest.from_json(text)
    except RequestError as exc:
        print(f"parbench worker: lock: {exc}", flush=True)
        return int(ExitCode.USAGE)
    reply: dict = {"workdir": _one(request, local_place(request.workdir)), "dst": None}
    if request.storage is not None and request.dst is not None:
        if request.action == "acquire" and not reply["workdir"]["held"]:
            reply["dst"] = None  # not asked for while the workdir is someone else's
        else:
            try:
                with make_storage(request.storage) as storage:
                    reply["dst"] = _one(request, storage_place(storage, request.dst))
            except (StorageError, ValueError) as exc:
                reply["dst"] = {"path": request.dst, "held": False, "error": describe_error(exc)}
    print(f"{LOCK_REPLY} {json.dumps(reply, sort_keys=True)}", flush=True)
    return int(ExitCode.OK)
