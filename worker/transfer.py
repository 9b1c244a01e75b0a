"""The timed IO of one client: write the reference file to storage, or read a file back.

Each job sets up (backend, connection, directories), records ``ready``, waits for the
common start (``wait_for_start``), then times the transfer while hashing the bytes moved.
What a failed transfer leaves is deleted: the partial file of a write; for a read, its
copy, whose previous version it deletes before anything else and which it creates only
at the start (never through a symbolic link).
"""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import time
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, Callable, Optional

from worker.clients import Identity, Job, WaitForStart, no_wait
from worker.hashing import HashingTee, read_chunks
from worker.meter import Meter
from worker.protocol import Measure
from worker.report import format_size
from worker.results import ClientResult, error_detail, one_line
from worker.storage import Storage, StorageConfig, StorageError, describe_error, make_storage


def expand_sources(sources: list[str], nfile: int) -> list[str]:
    """Storage path each client reads: one template with "{cid}", or exactly one per client."""
    if len(sources) == 1:
        return [sources[0].replace("{cid}", str(cid)) for cid in range(nfile)]
    if len(sources) == nfile:
        return list(sources)
    raise ValueError(
        f'give one --src ("{{cid}}" is replaced by the client id) or exactly --nfile={nfile}'
        f" of them, not {len(sources)}"
    )


def write_target(root: str, node: str, cid: int) -> str:
    """Storage path client ``cid`` of ``node`` writes: {ROOT}/{NID}/{cid}."""
    return posixpath.join(root, node, str(cid))


Cleanup = Callable[[Storage], str]


def _cleanup_note(what: str, exists: Callable[[], bool], delete: Callable[[], None]) -> str:
    """Remove the partial ``what`` a failed transfer may have left and say how that went."""
    try:
        if not exists():
            return f"no partial {what} left"
        delete()
        return f"partial {what} deleted"
    except Exception as exc:
        return f"cleanup failed, a partial {what} may remain: {describe_error(exc)}"


def _partial_file(storage: Storage, path: str) -> str:
    return _cleanup_note("file", lambda: storage.exists(path), lambda: storage.delete(path))


def _partial_copy(storage: Storage, local: str) -> str:
    # os.remove deletes a link, never its target
    return _cleanup_note("copy", lambda: os.path.lexists(local), lambda: os.remove(local))


class UnsafeCopy(StorageError):
    """A read copy's place is not parbench's to write; the message says why."""


def _remove_old_copy(local: str) -> None:
    """Delete the copy a previous read left at ``local`` (a regular file), so that a failed
    read leaves none; refuse a symbolic link (there or as its folder) or anything else."""
    folder = os.path.dirname(local)
    if os.path.islink(folder):
        raise UnsafeCopy(f"local_dst {folder} is a symbolic link; not writing copies through it")
    try:
        mode = os.lstat(local).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise UnsafeCopy(f"{local} is {kind}; move it away to read a copy there")
    os.remove(local)


class _CopyPlace:
    """Where a read's copy goes: ``local``, whose folder is made and held open on entry
    (O_NOFOLLOW: never a link) and where ``create`` makes the copy exclusively (never
    through a link, never over a file); or nowhere (None: os.devnull)."""

    def __init__(self, local: Optional[str]) -> None:
        self.local = local
        self.folder: Optional[int] = None

    def __enter__(self) -> _CopyPlace:
        if self.local is not None:
            folder = os.path.dirname(self.local)
            os.makedirs(folder, exist_ok=True)
            self.folder = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.folder is not None:
            os.close(self.folder)

    def create(self) -> BinaryIO:
        if self.local is None or self.folder is None:
            return open(os.devnull, "wb")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        name = os.path.basename(self.local)
        return os.fdopen(os.open(name, flags, 0o666, dir_fd=self.folder), "wb")


class _Transfer:
    """The part both jobs share: ``with _Transfer(...) as t:`` around the work, then
    ``return t.result``.

    On leaving, an exception becomes an error record: end time stamped at once; its error
    one line (the cause, and when the timed transfer had started, the bytes moved so far
    and ``cleanup``'s note), its detail the whole exception chain. The backend is closed
    either way, the bytes that went through ``tee`` are counted and hashed, and what the
    meter measured is in the record (a failed transfer's too).
    """

    def __init__(
        self,
        identity: Identity,
        config: StorageConfig,
        measure: Measure,
        cleanup: Optional[Cleanup] = None,
    ) -> None:
        self.identity = identity
        self.config = config
        self.cleanup = cleanup
        self.result = identity.record()
        self.meter = Meter(measure)
        self.storage: Optional[Storage] = None
        self.tee: Optional[HashingTee] = None

    def begin(self) -> None:
        """The timed transfer starts now."""
        self.meter.begin()
        self.result.start = time.time()

    def done(self) -> None:
        """The timed transfer ended well now."""
        self.result.end = time.time()
        self.meter.add("file", self.result.end - self.result.start)

    def open(self) -> Storage:
        self.storage = make_storage(self.config)
        self.storage.connect()
        return self.storage

    def __enter__(self) -> _Transfer:
        return self

    def __exit__(self, kind: object, exc: Optional[BaseException], tb: object) -> bool:
        result = self.result
        failed = isinstance(exc, Exception)
        try:
            if isinstance(exc, Exception):
                result.end = time.time() if result.start else 0.0
                cause = describe_error(exc)
                if result.start:
                    cause += f" after {format_size(self.tee.size if self.tee else 0)}"
                    if self.cleanup is not None and self.storage is not None:
                        cause = f"{cause}; {self.cleanup(self.storage)}"
                result.status = "error"
                result.error = one_line(self.identity.error_text(cause))
                result.detail = error_detail(exc)
        finally:
            if self.storage is not None:
                self.storage.close()
        if self.tee is not None:
            result.bytes = self.tee.size
            result.checksum = self.tee.hexdigest()
        result.latency = self.meter.latency_record() if result.start else None
        result.series = self.meter.series_record()
        return failed  # an Exception is now in the record; KeyboardInterrupt & co. go on


@dataclass(frozen=True)
class WriteJob(Job):
    identity: Identity
    storage: StorageConfig
    source: str  # local reference file
    chunk_size: int
    on_existing: str = "replace"
    measure: Measure = Measure()

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        path = self.identity.path
        mine: list = []  # non-empty once this write created the file

        def cleanup(storage: Storage) -> str:
            if not mine:  # someone else's file, made between our check and our create
                return "the file there is not this write's: left alone"
            return _partial_file(storage, path)

        with _Transfer(self.identity, self.storage, self.measure, cleanup) as transfer:
            result = transfer.result
            storage = transfer.open()
            with open(self.source, "rb") as stream:
                storage.mkdirs(posixpath.dirname(path))
                if storage.exists(path):
                    if self.on_existing == "refuse":
                        return self.identity.failure("already exists (--on-existing refuse)")
                    storage.delete(path)
                    result.replaced = True
                result.ready = time.time()
                wait_for_start()
                transfer.tee = HashingTee(read_chunks(stream, self.chunk_size))
                transfer.begin()
                storage.write_stream(path, transfer.tee, lambda: mine.append(True), transfer.meter)
                transfer.done()
        return transfer.result


@dataclass(frozen=True)
class ReadJob(Job):
    identity: Identity  # path: storage file read; local_path: where the copy goes
    storage: StorageConfig
    chunk_size: int
    measure: Measure = Measure()

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        local = self.identity.local_path
        cleanup = None if local is None else functools.partial(_partial_copy, local=local)
        with _Transfer(self.identity, self.storage, self.measure, cleanup) as transfer:
            result = transfer.result
            if local is not None:
                _remove_old_copy(local)  # first: from here on, a failed read leaves no copy
            storage = transfer.open()
            with _CopyPlace(local) as place:
                result.ready = time.time()
                wait_for_start()
                with place.create() as out:  # at the start: a failed set-up leaves no copy
                    transfer.begin()
                    chunks = storage.read_stream(
                        self.identity.path, self.chunk_size, transfer.meter
                    )
                    with closing(chunks):
                        transfer.tee = HashingTee(chunks)
                        for chunk in transfer.tee:
                            out.write(chunk)
                    transfer.done()
        return transfer.result
