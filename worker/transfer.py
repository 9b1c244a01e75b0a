"""The timed IO of one client: write the reference file to storage, or read a file back.

Each job sets up (backend, connection, directories), records ``ready``, waits for the
common start (``wait_for_start``), then times the transfer while hashing the bytes moved.
"""

from __future__ import annotations

import functools
import os
import posixpath
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Optional

from worker.clients import Identity, Job, WaitForStart, no_wait
from worker.hashing import HashingTee, read_chunks
from worker.results import ClientResult
from worker.storage import Storage, StorageConfig, describe_error, make_storage

ON_EXISTING = ("replace", "refuse")


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


def _cleanup_note(storage: Storage, path: str) -> str:
    """Remove what a failed write may have left and say how that went."""
    try:
        if not storage.exists(path):
            return "no partial file left"
        storage.delete(path)
        return "partial file deleted"
    except Exception as exc:
        return f"cleanup failed, a partial file may remain: {describe_error(exc)}"


class _Transfer:
    """The part both jobs share: ``with _Transfer(...) as t:`` around the work, then
    ``return t.result``.

    On leaving, an exception becomes an error record (end time stamped at once, then
    ``cleanup``'s note appended when the timed transfer had started); the backend is closed
    either way, and the bytes that went through ``tee`` are counted and hashed.
    """

    def __init__(
        self, identity: Identity, config: StorageConfig, cleanup: Optional[Cleanup] = None
    ) -> None:
        self.identity = identity
        self.config = config
        self.cleanup = cleanup
        self.result = identity.record()
        self.storage: Optional[Storage] = None
        self.tee: Optional[HashingTee] = None

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
                if result.start and self.cleanup is not None and self.storage is not None:
                    cause = f"{cause}; {self.cleanup(self.storage)}"
                result.status = "error"
                result.error = self.identity.error_text(cause)
        finally:
            if self.storage is not None:
                self.storage.close()
        if self.tee is not None:
            result.bytes = self.tee.size
            result.checksum = self.tee.hexdigest()
        return failed  # an Exception is now in the record; KeyboardInterrupt & co. go on


@dataclass(frozen=True)
class WriteJob(Job):
    identity: Identity
    storage: StorageConfig
    source: str  # local reference file
    chunk_size: int
    on_existing: str = "replace"

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        path = self.identity.path
        cleanup = functools.partial(_cleanup_note, path=path)
        with _Transfer(self.identity, self.storage, cleanup) as transfer:
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
                result.start = time.time()
                storage.write_stream(path, transfer.tee)
                result.end = time.time()
        return transfer.result


@dataclass(frozen=True)
class ReadJob(Job):
    identity: Identity  # path: storage file read; local_path: where the copy goes
    storage: StorageConfig
    chunk_size: int

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        local = self.identity.local_path or os.devnull
        with _Transfer(self.identity, self.storage) as transfer:
            result = transfer.result
            storage = transfer.open()
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            with open(local, "wb") as out:
                result.ready = time.time()
                wait_for_start()
                result.start = time.time()
                chunks = storage.read_stream(self.identity.path, self.chunk_size)
                with closing(chunks):
                    transfer.tee = HashingTee(chunks)
                    for chunk in transfer.tee:
                        out.write(chunk)
                result.end = time.time()
        return transfer.result
