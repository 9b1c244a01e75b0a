"""Check stored or copied files against the local reference file.

Method "stream" reads the file back through a backend and compares size and sha256;
method "fs-checksum" asks ``$ALLUXIO_HOME/bin/alluxio fs checksum`` for the MD5 and the
backend (the proxy) for the size: both are compared, so both must see the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Optional, Tuple

from worker.clients import Identity, Job, WaitForStart, no_wait
from worker.hashing import HashingTee, size_and_hash
from worker.protocol import nth_path
from worker.results import ClientResult, error_detail, one_line
from worker.storage import Storage, StorageConfig, StorageError, describe_error, make_storage

_MD5_LABELLED = re.compile(r"\bmd5(?:sum)?\s*[:=]\s*([0-9a-fA-F]{32})(?![0-9a-fA-F])", re.I)
_HEX32 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
_DOES_NOT_EXIST = re.compile(r"\bdoes not exist\b", re.I)


class FileMissing(Exception):
    """The file to check does not exist."""


def parse_fs_checksum(output: str) -> str:
    """The MD5 in `alluxio fs checksum` output: a "md5sum: HEX" line, else one lone 32-hex."""
    labelled = _MD5_LABELLED.search(output)
    if labelled:
        return labelled.group(1).lower()
    candidates = {match.lower() for match in _HEX32.findall(output)}
    if len(candidates) == 1:
        return candidates.pop()
    raise ValueError(f"no MD5 digest in `alluxio fs checksum` output: {output.strip()[-300:]!r}")


def names_missing_path(output: str, path: str) -> bool:
    """Whether shell output says ``path`` itself does not exist (``Path "/x" does not exist.``).

    Both on one line, the path not followed by more of a path ("/x" is not "/x1" or "/x/y"):
    "java: not found" or a missing config file is a broken shell, not a missing file.
    """
    named = re.compile(re.escape(path) + r"(?![\w-]|[./]\w)")
    return any(named.search(line) and _DOES_NOT_EXIST.search(line) for line in output.splitlines())


def fs_checksum(home: str, path: str, timeout: float) -> str:
    """Run `{home}/bin/alluxio fs checksum PATH` and return the MD5 it prints."""
    command = [os.path.join(home, "bin", "alluxio"), "fs", "checksum", path]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(command)}: no answer within {timeout:g} s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        if names_missing_path(output, path):
            raise FileMissing(path)
        tail = output.strip()[-300:]
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {tail}")
    return parse_fs_checksum(done.stdout)


@dataclass(frozen=True)
class Reference:
    """Size and digest of the local reference file, computed once."""

    path: str
    size: int
    checksum: str
    algorithm: str

    @classmethod
    def of(cls, path: str, algorithm: str, chunk_size: int) -> Reference:
        size, checksum = size_and_hash(path, algorithm, chunk_size)
        return cls(path, size, checksum, algorithm)


def _stream_digest(storage: Storage, path: str, chunk_size: int, algorithm: str) -> Tuple[int, str]:
    if not storage.exists(path):
        raise FileMissing(path)
    chunks = storage.read_stream(path, chunk_size)
    with closing(chunks):
        tee = HashingTee(chunks, algorithm)
        for _ in tee:
            pass
    return tee.size, tee.hexdigest()


def _fs_checksum_digest(
    storage_config: StorageConfig, path: str, home: str, timeout: float
) -> Tuple[int, str]:
    """(size, MD5) of ``path``: the MD5 from ``alluxio fs checksum``, the size from the backend.

    The shell asks whatever cluster the installation at ``home`` is configured for, which
    cannot be pointed at the proxy; so the proxy must agree: the path exists for both (a
    file the proxy cannot stat is an error) and the sizes are compared too.
    """
    digest = fs_checksum(home, path, timeout)
    with make_storage(storage_config) as storage:
        size = storage.size(path)
        if size is None:
            raise StorageError(f"{storage.where}: get-status {path}: no size in the answer")
    return size, digest


def _mismatches(reference: Reference, size: int, digest: str) -> list[str]:
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


@dataclass(frozen=True)
class VerifyJob(Job):
    """Check one file: ``identity.path`` through ``storage``, or via fs checksum with
    ``home``; or the ``files`` files of its sequence (nth_path), one record for all: ok
    when every one is, else the status and the figures of the first bad one, the error
    naming the first bad ones and how many there are."""

    identity: Identity
    storage: StorageConfig
    reference: Reference
    chunk_size: int
    home: Optional[str] = None
    timeout: float = 600.0
    files: int = 1

    @property
    def method(self) -> str:
        return "stream" if self.home is None else "fs-checksum"

    def _check(self, path: str) -> Tuple[str, int, Optional[str], Optional[str], Optional[str]]:
        """(status, size, digest, cause, detail) of one file."""
        try:
            if self.home is None:
                with make_storage(self.storage) as storage:
                    size, digest = _stream_digest(
                        storage, path, self.chunk_size, self.reference.algorithm
                    )
            else:
                size, digest = _fs_checksum_digest(self.storage, path, self.home, self.timeout)
        except FileMissing:
            return "missing", 0, None, "does not exist", None
        except Exception as exc:
            return "error", 0, None, describe_error(exc), error_detail(exc)
        problems = _mismatches(self.reference, size, digest)
        return ("mismatch" if problems else "ok"), size, digest, "; ".join(problems) or None, None

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        # untimed: a check starts as soon as it is set up
        result = self.identity.record(
            expected_bytes=self.reference.size,
            expected_checksum=self.reference.checksum,
            algorithm=self.reference.algorithm,
            method=self.method,
            files=self.files,
        )
        result.ready = result.start = time.time()
        bad: list = []
        total = 0
        for k in range(self.files):
            path = nth_path(self.identity.path, k)
            status, size, digest, cause, detail = self._check(path)
            total += size
            if k == 0 or (status != "ok" and not bad):  # the figures shown: first bad one
                result.status, result.bytes, result.checksum = status, size, digest
                result.detail = detail
            if status != "ok":
                bad.append((path, status, cause))
        if bad:
            result.error = one_line(self.identity.error_text(_bad_files(bad, self.files)))
        elif self.files > 1:
            result.bytes = total
        result.end = time.time()
        return result


def _bad_files(bad: list, files: int) -> str:
    """The cause of one bad file, or of several: ``3 of 40 files not ok: PATH: cause; ...``."""
    if files == 1:
        return bad[0][2]
    named = "; ".join(f"{path}: {status}: {cause}" for path, status, cause in bad[:NAMED_BAD])
    more = f"; and {len(bad) - NAMED_BAD} more" if len(bad) > NAMED_BAD else ""
    return f"{len(bad)} of {files} files not ok: {named}{more}"
