"""``python -m worker lock REQUEST_JSON``: take, renew or give back a run's locks on this node.

Two kinds of lock keep two runs apart, each a small file holding its
:class:`worker.protocol.Holder` as JSON, created only if absent (``O_EXCL`` on a local
file, a create that fails on an existing file in storage):

- ``{workdir}/.parbench-lock``: the node's workdir (records, read copies, runtime);
- ``{dst}/.parbench-lock`` in storage, beside the run's files, on one node only.

The worker reports who holds a lock and how long ago its file was written or renewed
(``age``: the node's clock against the file's modification time, so a lease is judged on
one clock, never by comparing two controllers'); whether that holder is gone is the
controller's call (it knows its own processes), which it passes back in ``take_over``.

A lock is only ever removed by moving it aside first: renamed to a name of its own
(a rename is atomic, so of two controllers taking over one stale lock only one moves it),
then read again where it now is: the holder that was meant is deleted, anyone else's
(renewed or taken over meanwhile) is put back, only where the lock's name is still free
(else it is left beside it, and that is said). The one window left: while a lock that
was not meant is aside, a third run may create the lock; the holder put aside then finds
its lock lost at its next renewal. In storage, a renewal writes the lock anew the same
way (files there cannot be changed), and its age is the node's clock against the
storage's modification time (the Alluxio master's clock: nodes of one cluster, not two
controllers).

An empty lock file (a crash between its create and its write) older than
:data:`EMPTY_STALE` seconds is cleared and that is said; a younger one, or one that
cannot be read, is reported with the command that removes it.

Prints one ``LockReply`` line (worker/protocol/lines.py): for each place, held or not and by whom.
"""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import shlex
import time
from contextlib import suppress
from dataclasses import asdict
from typing import Optional, Tuple

from . import layout
from .probe import create_lock_file, lock_file_state
from .protocol import (
    EMPTY_LOCK_STALE,
    ExitCode,
    Holder,
    LockReply,
    LockRequest,
    RequestError,
    decode,
    encode_line,
)
from .storage import Storage, StorageError, describe_error, is_missing, make_storage

LOCK_NAME = layout.LOCK_NAME
#: an empty lock file older than this is a crash's leftover (the contract's)
EMPTY_STALE = EMPTY_LOCK_STALE
#: how many times a lock that changes under a request is looked at again
TRIES = 5


class Unreadable(ValueError):
    """A lock file that holds no holder this worker understands."""


class _Place:
    """One lock file: create it if absent, read it with its age, move it aside."""

    path: str
    clear: str  # the command that removes it by hand, on this node

    def create(self, data: bytes) -> bool:
        """Make the lock file with ``data`` if there is none; False if there is one."""
        raise NotImplementedError

    def state(self, path: Optional[str] = None) -> Optional[Tuple[bytes, float]]:
        """The content of the lock file (or of ``path``) and its age in seconds; None if
        there is none."""
        raise NotImplementedError

    def aside(self) -> Optional[str]:
        """Rename the lock file to a name of its own (atomic); None if there was none."""
        raise NotImplementedError

    def restore(self, aside: str, data: bytes) -> bool:
        """Put a lock moved ``aside`` back if its name is free; False (left aside) if not."""
        raise NotImplementedError

    def drop(self, aside: str) -> None:
        """Delete a lock moved aside."""
        raise NotImplementedError

    def refresh(self, data: bytes, token: str) -> bool:
        """Renew the lock file if its holder's token is still ``token``; False if not."""
        return self.rewrite(data, token)

    def rewrite(self, data: bytes, token: str) -> bool:
        """Write the lock file anew with ``data`` if its holder's token is still
        ``token``: moved aside, checked there, made anew, the old one deleted. False when
        it is not ``token``'s (then put back) or taken by another meanwhile."""
        aside = self.aside()
        if aside is None:
            return False
        found = self.state(aside)
        if found is None:
            return False
        moved = found[0]
        if _token(self, moved) != token:
            if not self.restore(aside, moved):
                raise RuntimeError(_left_aside(self, aside, moved))
            return False
        made = self.create(data)
        self.drop(aside)
        return made

    def read(self) -> Optional[bytes]:
        found = self.state()
        return None if found is None else found[0]

    def holder(self) -> Optional[Holder]:
        """Who holds it; None if it is gone; Unreadable if it cannot be understood."""
        found = self.state()
        return None if found is None else self.decode(found[0])

    def decode(self, data: bytes) -> Holder:
        try:
            return decode(Holder, json.loads(data.decode()), "holder")
        except (ValueError, RequestError) as exc:
            raise Unreadable(f"lock file {self.path} cannot be read ({exc})") from None

    def aside_name(self) -> str:
        return f"{self.path}.aside-{secrets.token_hex(6)}"


class _Local(_Place):
    def __init__(self, workdir: str) -> None:
        self.path = os.path.join(workdir, LOCK_NAME)
        self.clear = f"rm -f -- {shlex.quote(self.path)}"

    def create(self, data: bytes) -> bool:
        made: bool = create_lock_file(self.path, data)  # the probe's: one maker of the file
        return made

    def state(self, path: Optional[str] = None) -> Optional[Tuple[bytes, float]]:
        found: Optional[Tuple[bytes, float]] = lock_file_state(path or self.path)
        return found

    def aside(self) -> Optional[str]:
        aside = self.aside_name()
        try:
            os.rename(self.path, aside)  # a link planted there is moved, never followed
        except FileNotFoundError:
            return None
        return aside

    def restore(self, aside: str, data: bytes) -> bool:
        try:  # a hard link is made only where no file is: atomic, and keeps its age
            os.link(aside, self.path, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError:  # no hard links here: made anew where none is (its age restarts)
            if not self.create(data):
                return False
        self.drop(aside)
        return True

    def drop(self, aside: str) -> None:
        with suppress(FileNotFoundError):
            os.remove(aside)

    def refresh(self, data: bytes, token: str) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        with os.fdopen(fd, "rb") as stream:
            current = self.decode(stream.read())
            if current.token != token:
                return False
            if not _same_but_expiry(current, data):  # another run of this process
                stream.close()
                return self.rewrite(data, token)
            os.utime(fd)  # its age starts again (the file is this one, checked above)
            mine = os.fstat(fd)
            try:
                there = os.lstat(self.path)
            except FileNotFoundError:
                return False  # moved aside meanwhile
            return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


class _Stored(_Place):
    """``{dst}/.parbench-lock`` in storage: create fails on an existing file; rename is
    atomic (posix: rename(2) to a new unique name; Alluxio: one master operation, which
    fails where a file exists)."""

    def __init__(self, storage: Storage, dst: str) -> None:
        self.storage, self.dst = storage, dst
        self.path = posixpath.join(dst, LOCK_NAME)
        self.clear = storage.remove_command(self.path)

    def create(self, data: bytes) -> bool:
        """Publish a whole lock file if there is none: written under a name of its own,
        then given the lock's name only where no file is (:meth:`Storage.publish`). A lock
        is never seen half written, so nobody can move one aside while its holder is still
        writing it."""
        self.storage.mkdirs(self.dst)
        staged = f"{self.path}.new-{secrets.token_hex(6)}"
        self.storage.write_stream(staged, [data])
        try:
            return self.storage.publish(staged, self.path)
        finally:
            with suppress(StorageError):
                self.drop(staged)

    def state(self, path: Optional[str] = None) -> Optional[Tuple[bytes, float]]:
        path = path or self.path
        try:  # the content first: a lock replaced meanwhile then seems younger, never older
            data = b"".join(self.storage.read_stream(path, 1 << 16))
            modified = self.storage.modified(path)
        except StorageError as exc:
            if is_missing(exc):
                return None  # none, or moved aside meanwhile
            raise
        return data, time.time() - modified

    def _rename(self, source: str, target: str) -> bool:
        """Rename ``source`` to ``target``; False if ``source`` is not there."""
        try:
            self.storage.rename(source, target)
        except StorageError as exc:
            if is_missing(exc):
                return False  # none, or moved by someone else first
            raise
        return True

    def aside(self) -> Optional[str]:
        aside = self.aside_name()
        return aside if self._rename(self.path, aside) else None

    def restore(self, aside: str, data: bytes) -> bool:
        if not self.create(data):  # made anew where none is (its age starts again)
            return False
        self.drop(aside)
        return True

    def drop(self, aside: str) -> None:
        if self.storage.exists(aside):
            self.storage.delete(aside)


def local_place(workdir: str) -> _Place:
    return _Local(workdir)


def storage_place(storage: Storage, dst: str) -> _Place:
    return _Stored(storage, dst)


def _encode(holder: Holder) -> bytes:
    return json.dumps(asdict(holder), sort_keys=True).encode()


def _left_aside(place: _Place, aside: str, data: bytes) -> str:
    return (
        f"lock file {place.path} was moved aside to {aside} and could not be put back "
        f"(another lock took its name meanwhile); its holder has lost it: {data[:200]!r}"
    )


def _take_aside(place: _Place, token: str) -> Tuple[bool, Optional[bytes]]:
    """Remove the lock file if its holder (still) has ``token`` (b"": it is empty): moved
    aside, checked there, then deleted; anyone else's is put back. (removed, what was
    found aside)."""
    aside = place.aside()
    if aside is None:
        return False, None
    found = place.state(aside)
    if found is None:  # gone from aside too: someone dropped it
        return False, None
    data = found[0]
    meant = (
        data.strip() == b""
        if token == ""
        else (data.strip() != b"" and _token(place, data) == token)
    )
    if meant:
        place.drop(aside)
        return True, data
    if not place.restore(aside, data):
        raise RuntimeError(_left_aside(place, aside, data))
    return False, data


def _same_but_expiry(current: Holder, data: bytes) -> bool:
    """Whether the lock file of ``current`` says what ``data`` would, but for the end of
    the lease (renewed by the file's age instead)."""
    new = json.loads(data.decode())
    old = asdict(current)
    return all(old[k] == new.get(k) for k in old if k != "expires")


def _token(place: _Place, data: bytes) -> Optional[str]:
    try:
        return place.decode(data).token
    except Unreadable:
        return None


def acquire(place: _Place, holder: Holder, take_over: tuple) -> dict:
    """Hold ``place`` for ``holder``: new, ours already (renewed), a gone holder's
    (replaced), or an empty file a crash left (cleared). Otherwise the current holder is
    reported, with the age of its lock file."""
    data = _encode(holder)
    done: dict = {"path": place.path, "held": True, "replaced": None}
    for _ in range(TRIES):  # a holder that leaves or changes just now: look again
        if place.create(data):
            return done
        found = place.state()
        if found is None:
            continue
        raw, age = found
        if not raw.strip():
            if age < EMPTY_STALE:
                time.sleep(0.1)  # being written, perhaps: look again
                continue
            if _take_aside(place, "")[0]:
                done["cleared"] = (
                    f"an empty lock file, {age:.0f} s old (a run that crashed while taking it)"
                )
            continue
        try:
            current = place.decode(raw)
        except Unreadable as exc:
            return _stuck(place, str(exc))
        if current.token == holder.token:
            if place.refresh(data, holder.token):
                return done
            continue  # lost meanwhile: look again
        if current.token not in take_over:
            return {"path": place.path, "held": False, "holder": asdict(current), "age": age}
        removed, _ = _take_aside(place, current.token)
        if removed:
            done["replaced"] = asdict(current)
    found = place.state()
    if found is not None and not found[0].strip():
        return _stuck(
            place,
            f"lock file {place.path} is empty, written {found[1]:.0f} s ago: a run may be "
            "taking it right now (try again in a few seconds), or one crashed doing so",
        )
    raise RuntimeError(f"lock file {place.path} keeps changing; try again")


def _stuck(place: _Place, why: str) -> dict:
    """A lock file no holder can be read from: the reply says why and how to remove it."""
    return {"path": place.path, "held": False, "error": why, "clear": place.clear}


def renew(place: _Place, holder: Holder) -> dict:
    """Renew ``place`` if ``holder`` still holds it (its age starts again); never takes
    a lock: one lost (gone, or someone else's) is reported with its holder, if any."""
    for _ in range(TRIES):
        found = place.state()
        if found is None:
            return {"path": place.path, "held": False, "holder": None}
        current = place.decode(found[0])
        if current.token != holder.token:
            return {"path": place.path, "held": False, "holder": asdict(current), "age": found[1]}
        if place.refresh(_encode(holder), holder.token):
            return {"path": place.path, "held": True, "replaced": None}
    raise RuntimeError(f"lock file {place.path} keeps changing; try again")


def release(place: _Place, holder: Holder) -> dict:
    """Remove ``place`` if ``holder`` holds it; anyone else's lock stays."""
    found = place.state()
    current = None
    if found is not None and found[0].strip():
        current = place.decode(found[0])
    if current is None or current.token != holder.token:
        return {"path": place.path, "held": False, "holder": _plain(current)}
    removed, data = _take_aside(place, holder.token)
    if removed or data is None:
        return {"path": place.path, "held": False}
    return {"path": place.path, "held": False, "holder": _plain(_holder_or_none(place, data))}


def _holder_or_none(place: _Place, data: bytes) -> Optional[Holder]:
    try:
        return place.decode(data)
    except Unreadable:
        return None


def _plain(holder: Optional[Holder]) -> Optional[dict]:
    return None if holder is None else asdict(holder)


def _one(request: LockRequest, place: _Place) -> dict:
    try:
        if request.action == "acquire":
            return acquire(place, request.holder, request.take_over)
        if request.action == "renew":
            return renew(place, request.holder)
        return release(place, request.holder)
    except Unreadable as exc:
        return _stuck(place, str(exc))
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
    print(encode_line(LockReply(reply)), flush=True)
    return int(ExitCode.OK)
