"""Verification: the fs-checksum parser and command path, and mismatch detection."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Optional

import pytest

from worker.clients import Identity
from worker.storage import PosixStorage, StorageConfig
from worker.verify import (
    FileMissing,
    Reference,
    VerifyJob,
    fs_checksum,
    names_missing_path,
    parse_fs_checksum,
)

MD5_A = "0cc175b9c0f1b6a831c399e269772661"


@pytest.mark.parametrize(
    "output",
    [
        f"md5sum: {MD5_A}\n",
        f"md5sum: {MD5_A.upper()}\n",
        f"2024-01-01 10:00:00 WARN NativeCodeLoader: 0123\nmd5sum:{MD5_A}  \n\n",
        f"  MD5SUM = {MD5_A}",
        f"{MD5_A}\n",  # no label, a single 32-hex token
        f"log 11111111111111111111111111111111\nmd5sum: {MD5_A}\n",  # the label wins
    ],
)
def test_parse_fs_checksum(output: str) -> None:
    assert parse_fs_checksum(output) == MD5_A


@pytest.mark.parametrize("output", ["", "md5sum: 1234", f"{MD5_A}0", f"{MD5_A} {'1' * 32}"])
def test_parse_fs_checksum_refuses_ambiguous_or_missing(output: str) -> None:
    with pytest.raises(ValueError, match="no MD5"):
        parse_fs_checksum(output)


def job(tmp_path: Path, ref: Path, cid: int, home: Optional[Path] = None) -> VerifyJob:
    algorithm = "sha256" if home is None else "md5"
    identity = Identity("r", "verify-write", "n0", cid, "hostA", "posix", f"/b/n0/{cid}")
    storage = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    reference = Reference.of(str(ref), algorithm, chunk_size=1000)
    return VerifyJob(
        identity, storage, reference, chunk_size=1000, home=None if home is None else str(home)
    )


def test_stream_verification_detects_size_and_content(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"abc" * 1000)
    stored = tmp_path / "store" / "b" / "n0"
    stored.mkdir(parents=True)
    (stored / "0").write_bytes(b"abc" * 1000)
    (stored / "1").write_bytes(b"abc" * 999)
    (stored / "2").write_bytes(b"abd" * 1000)
    results = [job(tmp_path, ref, cid)() for cid in range(4)]
    assert [r.status for r in results] == ["ok", "mismatch", "mismatch", "missing"]
    assert results[0].checksum == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert (results[1].bytes, results[1].expected_bytes) == (2997, 3000)
    assert "size 2997 != expected 3000" in results[1].error
    assert "sha256" in results[2].error and "size" not in results[2].error
    assert results[3].error == "hostA: /b/n0/3: does not exist"
    assert all(r.method == "stream" and r.end >= r.start > 0 for r in results)


def fake_alluxio(tmp_path: Path, body: str) -> Path:
    home = tmp_path / "alluxio"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    script = home / "bin" / "alluxio"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return home


@pytest.mark.parametrize(
    ("stored", "status", "error"),
    [
        (b"a", "ok", None),
        (b"ab", "mismatch", "hostA: /b/n0/0: size 2 != expected 1"),
        # the checksum is of some file, the backend has none: they disagree
        (None, "error", "hostA: /b/n0/0: posix root {store}: stat: FileNotFoundError: "),
    ],
)
def test_fs_checksum_needs_the_backends_size_to_agree(
    tmp_path: Path, stored: Optional[bytes], status: str, error: Optional[str]
) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"a")
    (tmp_path / "store" / "b" / "n0").mkdir(parents=True)
    if stored is not None:
        (tmp_path / "store" / "b" / "n0" / "0").write_bytes(stored)
    home = fake_alluxio(tmp_path, f"echo 'md5sum: {MD5_A}'")  # the MD5 of b"a"
    result = job(tmp_path, ref, 0, home)()
    assert (result.status, result.method, result.algorithm) == (status, "fs-checksum", "md5")
    if error is None:
        assert result.error is None
        assert (result.bytes, result.checksum) == (1, MD5_A)
    else:
        assert result.error.startswith(error.format(store=tmp_path / "store"))


def test_fs_checksum_with_an_unknown_size_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"a")
    monkeypatch.setattr(PosixStorage, "size", lambda self, path: None)
    result = job(tmp_path, ref, 0, fake_alluxio(tmp_path, f"echo 'md5sum: {MD5_A}'"))()
    assert (result.status, result.error) == (
        "error",
        f"hostA: /b/n0/0: posix root {tmp_path / 'store'}: get-status /b/n0/0: "
        "no size in the answer",
    )


def test_fs_checksum_names_the_proxy_that_cannot_stat(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"a")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    identity = Identity("r", "verify-write", "n0", 0, "hostA", "alluxio", "/b/n0/0")
    proxy = StorageConfig(host="127.0.0.1", port=port, timeout=5)
    reference = Reference.of(str(ref), "md5", chunk_size=1000)
    home = fake_alluxio(tmp_path, f"echo 'md5sum: {MD5_A}'")
    result = VerifyJob(identity, proxy, reference, 1000, home=str(home))()
    assert (result.status, result.error) == (
        "error",
        f"hostA: /b/n0/0: alluxio proxy 127.0.0.1:{port}: get-status /b/n0/0: connection refused",
    )
    assert "ConnectionRefusedError" in result.detail and "HTTPError" in result.detail


@pytest.mark.parametrize(
    ("body", "status", "in_error"),
    [
        ('echo "Path \\"$3\\" does not exist." >&2; exit 255', "missing", "does not exist"),
        ('echo "Path does not exist: $3." >&2; exit 255', "missing", "does not exist"),
        # a broken shell is not a missing file, whatever words it uses
        ('echo "java: not found" >&2; exit 127', "error", "exited with 127: java: not found"),
        ('echo "$0: 12: java: not found" >&2; exit 127', "error", "java: not found"),
        ('echo "No such file or directory: conf" >&2; exit 1', "error", "No such file"),
        ('echo "Path \\"/etc/alluxio\\" does not exist." >&2; exit 1', "error", "/etc/alluxio"),
        ('echo "Path \\"${3}1\\" does not exist." >&2; exit 255', "error", "exited with 255"),
    ],
)
def test_fs_checksum_missing_only_when_the_path_does_not_exist(
    tmp_path: Path, body: str, status: str, in_error: str
) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"a")
    result = job(tmp_path, ref, 0, fake_alluxio(tmp_path, body))()
    assert (result.status, result.method) == (status, "fs-checksum")
    assert in_error in result.error


def test_fs_checksum_raises_file_missing_for_the_named_path(tmp_path: Path) -> None:
    home = fake_alluxio(tmp_path, 'echo "Path \\"/x\\" does not exist." >&2; exit 255')
    with pytest.raises(FileMissing):
        fs_checksum(str(home), "/x", timeout=10)
    home = fake_alluxio(tmp_path, 'echo "java: not found" >&2; exit 127')
    with pytest.raises(RuntimeError, match="exited with 127: java: not found"):
        fs_checksum(str(home), "/x", timeout=10)


@pytest.mark.parametrize(
    ("output", "path", "named"),
    [
        ('Path "/x" does not exist.', "/x", True),
        ("FileDoesNotExistException: Path /b/n0/1 does not exist", "/b/n0/1", True),
        ("alluxio://master:19998/x does not exist", "/x", True),
        ('Path "/x1" does not exist.', "/x", False),
        ('Path "/x/y" does not exist.', "/x", False),
        ("java: not found", "/x", False),
        ("/x: not found", "/x", False),
        ("conf does not exist\nchecking /x", "/x", False),  # not on one line
    ],
)
def test_names_missing_path(output: str, path: str, named: bool) -> None:
    assert names_missing_path(output, path) is named
