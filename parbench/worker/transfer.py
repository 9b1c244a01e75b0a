"""The timed IO of one client: write the reference file to storage, or read a file back.

Each job sets up (backend, connection, directories), records ``ready``, waits for the
common start (``wait_for_start``), then times the transfer while hashing the bytes moved.
What a failed transfer leaves is deleted: the partial file of a write; for a read, its
copy, whose previous version it deletes before anything else and which it creates only
at the start (never through a symbolic link).
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, Callable, List, Optional

from .clients import Identity, Job, WaitForStart, no_wait
from .hashing import CountingTee, read_chunks
from .meter import Meter
from .protocol import Measure, is_nth_of, nth_path
from .report import format_size
from .results import ClientResult, error_detail, one_line
from .storage import Storage, StorageConfig, StorageError, describe_error, make_storage


def expand_sources(sources: list[str], nfile: int) -> list[str]:
    """Storage path each client reads: one template with "{cid}", or exactly one per client."""
    if len(sources) == 1:
        return [sources[0].replace("{cid}", str(cid)) for cid in range(nfile)]
    if len(sources) == nfile:
        return list(sources)
    raise ValueError(
        f'give one --src ("{{cid}}" is replaced by the client id) or exactly --clients={nfile}'
        f" of them, not {len(sources)}"
    )


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


def _partial_copy(storage: Storage, local: str) -> str:  # storage: a Cleanup's signature
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

    def create(self, copy: Optional[str]) -> BinaryIO:
        """The copy ``copy`` (a file in the folder ``local`` is in), or nowhere (None)."""
        if copy is None or self.folder is None:
            return open(os.devnull, "wb")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        name = os.path.basename(copy)
        return os.fdopen(os.open(name, flags, 0o666, dir_fd=self.folder), "wb")


class _Transfer:
    """The part both jobs share: ``with _Transfer(...) as t:`` around the work, then
    ``return t.result.freeze()``.

    On leaving, an exception becomes an error record: end time stamped at once; its error
    one line (the cause, and when the timed transfer had started, the bytes moved so far
    and ``cleanup``'s note), its detail the whole exception chain. The backend is closed
    either way; the record counts the bytes of the files moved whole (``files``) and of
    the one under way, and what the meter measured (a failed transfer's too). It hashes
    nothing: the bytes are judged by verify, which reads back what storage holds (or the
    copy on disk), off the timed path.
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
        self.result = identity.draft(files=0)
        self.meter = Meter(measure)
        self.storage: Optional[Storage] = None
        self.tee: Optional[CountingTee] = None  # the file under way
        self.moved = 0  # bytes of the files done

    def open(self) -> Storage:
        self.storage = make_storage(self.config)
        self.storage.connect()
        return self.storage

    def begin(self) -> None:
        """The timed transfer starts now."""
        self.meter.begin()
        self.result.start = time.time()

    def file_done(self, began: float) -> None:
        """The file under way (since ``began``, the meter's clock) was moved whole."""
        assert self.tee is not None
        self.meter.file_done(began)
        self.moved += self.tee.size
        self.result.files += 1
        self.tee = None

    def done(self) -> None:
        """The timed transfer ended well now."""
        self.result.end = time.time()

    def __enter__(self) -> _Transfer:
        return self

    def __exit__(self, kind: object, exc: Optional[BaseException], tb: object) -> bool:
        result = self.result
        failed = isinstance(exc, Exception)
        under_way = self.tee.size if self.tee is not None else 0
        try:
            if isinstance(exc, Exception):
                result.end = time.time() if result.start else 0.0
                cause = describe_error(exc)
                if result.start:
                    cause += f" after {format_size(self.moved + under_way)}"
                    if result.files:
                        cause += f" ({result.files} whole file(s) kept)"
                    if self.cleanup is not None and self.storage is not None:
                        cause = f"{cause}; {self.cleanup(self.storage)}"
                result.status = "error"
                result.error = one_line(self.identity.error_text(cause))
                result.detail = error_detail(exc)
        finally:
            if self.storage is not None:
                self.storage.close()
        if result.start:
            result.bytes = self.moved + under_way
        result.latency = self.meter.latency_record() if result.start else None
        result.series = self.meter.series_record()
        return failed  # an Exception is now in the record; KeyboardInterrupt & co. go on


class _Current:
    """The file of a sequence under way, and whether this job made it (for cleanup)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.mine = False

    def made(self) -> None:
        self.mine = True

    def at(self, path: Optional[str]) -> Optional[str]:
        self.path, self.mine = path, False
        return path


def _end(start: Optional[float], duration: Optional[float]) -> Optional[float]:
    """When a job with ``duration`` begins no more files: the common start + duration
    (the start: None when it was "at once", then now)."""
    if duration is None:
        return None
    return (start if start is not None else time.time()) + duration


def _more(done: int, files: int, end_at: Optional[float]) -> bool:
    """Whether to move another file: until the end time (at least one file, even for a
    client that began late), else until ``files`` are done."""
    return done < files if end_at is None else (done == 0 or time.time() < end_at)


def _sequence(storage: Storage, path: str) -> List[str]:
    """The files of the sequence at ``path`` (nth_path) that exist now."""
    folder, base = posixpath.split(path)
    return [posixpath.join(folder, n) for n in sorted(storage.names(folder)) if is_nth_of(n, base)]


@dataclass(frozen=True)
class WriteJob(Job):
    identity: Identity
    storage: StorageConfig
    source: str  # local reference file
    chunk_size: int
    on_existing: str = "replace"
    measure: Measure = Measure()
    duration: Optional[float] = None  # files one after another until then

    def existing(self, storage: Storage) -> List[str]:
        """What a write here replaces: its file, or with a duration every file of its
        sequence, so that afterwards exactly the files it wrote are there. (Without a
        duration, ``.1``, ``.2``, ... an earlier run with one left are not looked for:
        nothing reads them, and ``fab clean`` removes them.)"""
        path = self.identity.path
        if self.duration is None:
            return [path] if storage.exists(path) else []
        return _sequence(storage, path)

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        path = self.identity.path
        current = _Current(path)

        def cleanup(storage: Storage) -> str:
            if not current.mine:  # someone else's file, made between our check and our create
                return "the file there is not this write's: left alone"
            assert current.path is not None
            return _partial_file(storage, current.path)

        with _Transfer(self.identity, self.storage, self.measure, cleanup) as transfer:
            result = transfer.result
            storage = transfer.open()
            with open(self.source, "rb") as stream:
                storage.mkdirs(posixpath.dirname(path))
                old = self.existing(storage)
                if old:
                    if self.on_existing == "refuse":
                        return self.identity.failure(
                            f"already exists (--on-existing refuse): {', '.join(old[:3])}"
                            + (f" and {len(old) - 3} more" if len(old) > 3 else ""),
                            files=0,
                        )
                    for stale in old:
                        storage.delete(stale)
                    result.replaced = True
                result.ready = time.time()
                end_at = _end(wait_for_start(), self.duration)
                transfer.begin()
                while _more(result.files, 1, end_at):
                    target = current.at(nth_path(path, result.files))
                    assert target is not None
                    if result.files:  # again from its start (only then: it may be a pipe)
                        stream.seek(0)
                    began = transfer.meter.clock()
                    transfer.tee = CountingTee(read_chunks(stream, self.chunk_size))
                    storage.write_stream(target, transfer.tee, current.made, transfer.meter)
                    transfer.file_done(began)
                transfer.done()
        return transfer.result.freeze()


@dataclass(frozen=True)
class ReadJob(Job):
    identity: Identity  # path: storage file read; local_path: where the copy goes
    storage: StorageConfig
    chunk_size: int
    measure: Measure = Measure()
    duration: Optional[float] = None  # files one after another until then, round again
    files: int = 1  # of the sequence at identity.path (nth_path)

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        local = self.identity.local_path
        current = _Current(local)

        def cleanup(storage: Storage) -> str:
            if not current.mine:  # made by someone else before our exclusive create
                return "the copy there is not this read's: left alone"
            assert current.path is not None
            return _partial_copy(storage, current.path)

        with _Transfer(
            self.identity, self.storage, self.measure, None if local is None else cleanup
        ) as transfer:
            result = transfer.result
            if local is not None:  # first: from here on, a failed read leaves no copy
                for n in range(self.files):
                    _remove_old_copy(nth_path(local, n))
            storage = transfer.open()
            with _CopyPlace(local) as place:
                result.ready = time.time()
                end_at = _end(wait_for_start(), self.duration)
                transfer.begin()
                while _more(result.files, self.files, end_at):
                    n = result.files % self.files
                    copy = current.at(None if local is None else nth_path(local, n))
                    if result.files >= self.files and copy is not None:
                        _remove_old_copy(copy)  # read again: this run's copy goes first
                    began = transfer.meter.clock()
                    # the copy is made at the start: a failed set-up leaves none
                    with place.create(copy) as out:
                        current.made()
                        chunks = storage.read_stream(
                            nth_path(self.identity.path, n), self.chunk_size, transfer.meter
                        )
                        with closing(chunks):
                            transfer.tee = CountingTee(chunks)
                            for chunk in transfer.tee:
                                out.write(chunk)
                    transfer.file_done(began)
                transfer.done()
        return transfer.result.freeze()
