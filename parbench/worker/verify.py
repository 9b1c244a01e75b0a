"""Check stored or copied files against the local reference file, and that they are the
files the run made.

Each file is read back through the backend (the benchmarked proxy for a write's files, the
node's disk for a read's copies) and compared by size and sha256 with the reference. When
the run recorded the tag of each file it made (worker/made.py), the file's tag is asked
first: a file that is not the run's (replaced by a later run, or made by someone else where
the run's write failed) is reported ``replaced`` with the tag found, never judged by its
content. One backend connection per client for all its files; bytes and files counted
into the node's progress like the timed phases.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from .clients import Identity, Job, WaitForStart, no_wait
from .hashing import HashingTee, size_and_hash
from .meter import Meter
from .protocol import Measure, nth_path
from .results import FOUND_LIMIT, ClientResult, error_detail, one_line
from .storage import Storage, StorageConfig, describe_error, make_storage


class FileMissing(Exception):
    """The file to check does not exist."""


@dataclass(frozen=True)
class ReferenceDigest:
    """Size and digest of the local reference file, computed once."""

    path: str
    size: int
    checksum: str
    algorithm: str

    @classmethod
    def of(cls, path: str, algorithm: str, chunk_size: int) -> ReferenceDigest:
        size, checksum = size_and_hash(path, algorithm, chunk_size)
        return cls(path, size, checksum, algorithm)


def _stream_digest(
    storage: Storage, path: str, chunk_size: int, algorithm: str, meter: Meter
) -> Tuple[int, str]:
    chunks = storage.read_stream(path, chunk_size, meter)
    with closing(chunks):
        tee = HashingTee(chunks, algorithm)
        for _ in tee:
            pass
    return tee.size, tee.hexdigest()


def _mismatches(reference: ReferenceDigest, size: int, digest: str) -> list[str]:
    problems = []
    if size != reference.size:
        problems.append(f"size {size} != expected {reference.size}")
    if digest != reference.checksum:
        problems.append(
            f"{reference.algorithm} {digest[:12]}... != expected {reference.checksum[:12]}..."
        )
    return problems


#: bad files a record of several names, at most
NAMED_BAD = 3

#: a verify client counts its bytes and files for the live progress, and measures nothing
_PROGRESS_ONLY = Measure(latency=False, interval=0)


class FileCheck(NamedTuple):
    """What one file was found to be."""

    status: str
    size: int = 0
    digest: Optional[str] = None
    cause: Optional[str] = None
    detail: Optional[str] = None
    found: Optional[str] = None  # the tag of a file that is not the run's


def _not_the_runs(expected: str) -> str:
    if expected:
        return "not the file this run made"
    return "not this run's: the run did not complete a file here"


@dataclass(frozen=True)
class VerifyJob(Job):
    """Check the ``files`` files of the sequence at ``identity.path`` (nth_path) through
    ``storage``; one record for all: ok when every one is, else the status and the
    figures of the first bad one, the error naming the first bad ones and how many there
    are, ``found`` the tags of those that are not the run's. ``expect``: the tag the run
    recorded for each (empty: not known, content only)."""

    identity: Identity
    storage: StorageConfig
    reference: ReferenceDigest
    chunk_size: int
    files: int = 1
    expect: Tuple[str, ...] = ()

    def _check(
        self,
        storage: Storage,
        path: str,
        k: int,
        meter: Meter,
        tag_of: Callable[[str], Optional[str]],
    ) -> FileCheck:
        try:
            if self.expect:
                tag = tag_of(path)
                if tag is None:
                    raise FileMissing(path)
                if tag != self.expect[k]:
                    return FileCheck("replaced", cause=_not_the_runs(self.expect[k]), found=tag)
            elif not storage.exists(path):
                raise FileMissing(path)
            began = meter.clock()
            size, digest = _stream_digest(
                storage, path, self.chunk_size, self.reference.algorithm, meter
            )
            meter.file_done(began)
        except FileMissing:
            return FileCheck("missing", cause="does not exist")
        except Exception as exc:
            return FileCheck("error", cause=describe_error(exc), detail=error_detail(exc))
        problems = _mismatches(self.reference, size, digest)
        return FileCheck(
            "mismatch" if problems else "ok", size, digest, "; ".join(problems) or None
        )

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        # untimed: a check starts as soon as it is set up
        result = self.identity.draft(
            expected_bytes=self.reference.size,
            expected_checksum=self.reference.checksum,
            algorithm=self.reference.algorithm,
            method="stream",
            files=self.files,
        )
        result.ready = result.start = time.time()
        meter = Meter(_PROGRESS_ONLY)
        bad: list = []
        found: Dict[str, str] = {}
        total = 0
        with make_storage(self.storage) as storage:
            tag_of = storage.tag_lookup()
            for k in range(self.files):
                path = nth_path(self.identity.path, k)
                check = self._check(storage, path, k, meter, tag_of)
                total += check.size
                if k == 0 or (check.status != "ok" and not bad):  # shown: the first bad one
                    result.status, result.bytes = check.status, check.size
                    result.checksum, result.detail = check.digest, check.detail
                if check.status != "ok":
                    bad.append((path, check.status, check.cause))
                if check.found is not None and len(found) < FOUND_LIMIT:
                    found[path] = check.found
        if bad:
            result.error = one_line(self.identity.error_text(_bad_files(bad, self.files)))
        elif self.files > 1:
            result.bytes = total
        result.found = found or None
        result.end = time.time()
        return result.freeze()


def _bad_files(bad: list, files: int) -> str:
    """The cause of one bad file, or of several: ``3 of 40 files not ok: PATH: cause; ...``."""
    if files == 1:
        return bad[0][2]
    named = "; ".join(f"{path}: {status}: {cause}" for path, status, cause in bad[:NAMED_BAD])
    more = f"; and {len(bad) - NAMED_BAD} more" if len(bad) > NAMED_BAD else ""
    return f"{len(bad)} of {files} files not ok: {named}{more}"
