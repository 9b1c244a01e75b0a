"""Verification: mismatch detection, files that are not the run's, progress."""

from __future__ import annotations

import hashlib
import multiprocessing
import socket
import time
from pathlib import Path

from parbench.worker import progress
from parbench.worker.clients import Identity
from parbench.worker.storage import PosixStorage, StorageConfig
from parbench.worker.verify import ReferenceDigest, VerifyJob


def job(tmp_path: Path, ref: Path, cid: int, files: int = 1, expect: tuple = ()) -> VerifyJob:
    identity = Identity("r", "verify-write", "n0", cid, "hostA", "posix", f"/b/n0/{cid}")
    storage = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    reference = ReferenceDigest.of(str(ref), "sha256", chunk_size=1000)
    return VerifyJob(identity, storage, reference, 1000, files, expect)


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


def test_names_the_proxy_that_cannot_answer(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"a")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    identity = Identity("r", "verify-write", "n0", 0, "hostA", "alluxio", "/b/n0/0")
    proxy = StorageConfig(host="127.0.0.1", port=port, timeout=5)
    reference = ReferenceDigest.of(str(ref), "sha256", chunk_size=1000)
    result = VerifyJob(identity, proxy, reference, 1000, expect=("7.1",))()
    assert (result.status, result.error) == (
        "error",
        f"hostA: /b/n0/0: alluxio proxy 127.0.0.1:{port}: get-status /b/n0/0: connection refused",
    )
    assert "ConnectionRefusedError" in result.detail and "HTTPError" in result.detail


def _store(tmp_path: Path, data: bytes, names: tuple = ("0",)) -> PosixStorage:
    folder = tmp_path / "store" / "b" / "n0"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)
    return PosixStorage(StorageConfig(backend="posix", root=str(tmp_path / "store")))


def test_a_file_that_is_not_the_runs_is_replaced_whatever_its_content(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"abc" * 1000)
    storage = _store(tmp_path, b"abc" * 1000, ("0", "0.1"))
    tags = (storage.tag("/b/n0/0"), storage.tag("/b/n0/0.1"))
    assert all(tags) and tags[0] != tags[1]
    assert job(tmp_path, ref, 0, 2, tags)().ok  # the run's own files
    # a later run writes the second file again, byte for byte the same
    (tmp_path / "store" / "b" / "n0" / "0.1").unlink()
    (tmp_path / "store" / "b" / "n0" / "0.1").write_bytes(b"abc" * 1000)
    result = job(tmp_path, ref, 0, 2, tags)()
    assert result.status == "replaced"
    assert result.found == {"/b/n0/0.1": storage.tag("/b/n0/0.1")}
    assert "1 of 2 files not ok: /b/n0/0.1: replaced: not the file this run made" in result.error


def test_a_file_where_the_run_made_none_is_not_the_runs(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"abc")
    storage = _store(tmp_path, b"abc")  # left by an earlier run; this run's write failed
    result = job(tmp_path, ref, 0, 1, ("",))()
    assert (result.status, result.found) == ("replaced", {"/b/n0/0": storage.tag("/b/n0/0")})
    assert result.error == ("hostA: /b/n0/0: not this run's: the run did not complete a file here")
    assert job(tmp_path, ref, 1, 1, ("",))().status == "missing"  # nothing there


def test_tags_change_when_a_file_is_written_again_in_place(tmp_path: Path) -> None:
    storage = _store(tmp_path, b"x")
    before = storage.tag("/b/n0/0")
    time.sleep(0.01)
    with open(tmp_path / "store" / "b" / "n0" / "0", "r+b") as out:
        out.write(b"x")
    assert storage.tag("/b/n0/0") != before
    assert storage.tags("/b/n0") == {"0": storage.tag("/b/n0/0")}
    assert storage.tag("/b/n0/9") is None and storage.tags("/b/none") == {}


def test_verify_counts_its_bytes_and_files_for_the_progress(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"abc" * 1000)
    _store(tmp_path, b"abc" * 1000, ("0", "0.1", "0.2"))
    slots = multiprocessing.get_context().RawArray("q", 2)
    progress.adopt(slots, 0)
    try:
        assert job(tmp_path, ref, 0, 3)().ok
    finally:
        progress.adopt(None, 0)
    assert slots[:] == [9000, 3]
