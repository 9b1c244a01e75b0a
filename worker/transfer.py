"""The timed IO of one client: write the reference file to storage, or read a file back.

Each job sets up (backend, connection, directories), records ``ready``, waits for the
common start, then times the transfer while hashing the bytes moved.
"""

from __future__ import annotations

import os
import posixpath
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Optional

from worker.clients import Identity, Job, wait_until
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


def _cleanup_note(storage: Storage, path: str) -> str:
    """Remove what a failed write may have left and say how that went."""
    try:
        if not storage.exists(path):
            return "no partial file left"
        storage.delete(path)
        return "partial file deleted"
    except Exception as exc:
        return f"cleanup failed, a partial file may remain: {describe_error(exc)}"


@dataclass(frozen=True)
class WriteJob(Job):
    identity: Identity
    storage: StorageConfig
    source: str  # local reference file
    chunk_size: int
    start_at: Optional[float] = None
    on_existing: str = "replace"

    def __call__(self) -> ClientResult:
        path = self.identity.path
        result = self.identity.record()
        started = False
        tee: Optional[HashingTee] = None
        storage: Optional[Storage] = None
        try:
            storage = make_storage(self.storage)
            with open(self.source, "rb") as stream:
                storage.connect()
                storage.mkdirs(posixpath.dirname(path))
                if storage.exists(path):
                    if self.on_existing == "refuse":
                        return self.identity.failure("already exists (--on-existing refuse)")
                    storage.delete(path)
                    result.replaced = True
                result.ready = time.time()
                wait_until(self.start_at)
                tee = HashingTee(read_chunks(stream, self.chunk_size))
                started = True
                result.start = time.time()
                storage.write_stream(path, tee)
                result.end = time.time()
        except Exception as exc:
            result.end = time.time() if started else 0.0
            cause = describe_error(exc)
            if started and storage is not None:
                cause = f"{cause}; {_cleanup_note(storage, path)}"
            result.status = "error"
            result.error = self.identity.error_text(cause)
        finally:
            if storage is not None:
                storage.close()
        if tee is not None:
            result.bytes = tee.size
            result.checksum = tee.hexdigest()
        return result


@dataclass(frozen=True)
class ReadJob(Job):
    identity: Identity  # path: storage file read; local_path: where the copy goes
    storage: StorageConfig
    chunk_size: int
    start_at: Optional[float] = None

    def __call__(self) -> ClientResult:
        result = self.identity.record()
        tee: Optional[HashingTee] = None
        storage: Optional[Storage] = None
        local = self.identity.local_path or os.devnull
        try:
            storage = make_storage(self.storage)
            storage.connect()
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            with open(local, "wb") as out:
                result.ready = time.time()
                wait_until(self.start_at)
                result.start = time.time()
                chunks = storage.read_stream(self.identity.path, self.chunk_size)
                with closing(chunks):
                    tee = HashingTee(chunks)
                    for chunk in tee:
                        out.write(chunk)
                result.end = time.time()
        except Exception as exc:
            result.end = time.time() if result.start else 0.0
            result.status = "error"
            result.error = self.identity.error_text(describe_error(exc))
        finally:
            if storage is not None:
                storage.close()
        if tee is not None:
            result.bytes = tee.size
            result.checksum = tee.hexdigest()
        return result
