"""Client jobs in-process: source expansion, streaming writes/reads, failure cleanup."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

import pytest

from worker.clients import Identity
from worker.storage import PosixStorage, StorageConfig
from worker.transfer import ReadJob, WriteJob, expand_sources, write_target


def test_expand_sources() -> None:
    assert expand_sources(["/parbench/n1/{cid}"], 3) == [f"/parbench/n1/{c}" for c in range(3)]
    assert expand_sources(["/bench/big"], 2) == ["/bench/big", "/bench/big"]
    assert expand_sources(["/a", "/b"], 2) == ["/a", "/b"]
    assert expand_sources(["/a/{cid}", "/b/{cid}"], 2) == ["/a/{cid}", "/b/{cid}"]  # literal
    for sources in (["/a", "/b"], []):
        with pytest.raises(ValueError, match="exactly --nfile=3"):
            expand_sources(sources, 3)


def test_write_target() -> None:
    assert write_target("/parbench", "n0", 2) == "/parbench/n0/2"
    assert write_target("/parbench/", "n0", 0) == "/parbench/n0/0"
    assert write_target("/", "n1", 5) == "/n1/5"


def identity(phase: str, path: str, local: str = None) -> Identity:  # type: ignore[assignment]
    return Identity("r", phase, "n0", 0, "hostA", "posix", path, local)


def test_write_and_read_stream_in_small_chunks(tmp_path: Path) -> None:
    data = os.urandom(200_001)
    ref = tmp_path / "ref"
    ref.write_bytes(data)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    (tmp_path / "store").mkdir()
    written = WriteJob(identity("write", "/w/n0/0"), config, str(ref), chunk_size=4096)()
    digest = hashlib.sha256(data).hexdigest()
    assert (written.status, written.bytes, written.checksum) == ("ok", len(data), digest)

    local = tmp_path / "copies" / "0"
    read = ReadJob(identity("read", "/w/n0/0", str(local)), config, chunk_size=1000)()
    assert (read.status, read.bytes, read.checksum) == ("ok", len(data), digest)
    assert local.read_bytes() == data


def test_failed_write_deletes_the_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"x" * 10_000)
    (tmp_path / "store").mkdir()
    original = PosixStorage.write_stream

    def failing(self: PosixStorage, path: str, chunks: Iterable[bytes]) -> None:
        def some() -> Iterable[bytes]:
            for number, chunk in enumerate(chunks):
                if number == 2:
                    raise OSError(28, "No space left on device")
                yield chunk

        original(self, path, some())

    monkeypatch.setattr(PosixStorage, "write_stream", failing)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    result = WriteJob(identity("write", "/w/n0/0"), config, str(ref), chunk_size=1000)()
    assert result.status == "error"
    assert result.error.startswith("hostA: /w/n0/0: posix root ")
    assert "No space left on device" in result.error
    assert result.error.endswith("; partial file deleted")
    assert result.end >= result.start > 0 and result.bytes == 3000  # read from the source so far
    assert not (tmp_path / "store" / "w" / "n0" / "0").exists()


def test_write_with_unreadable_source_fails_before_starting(tmp_path: Path) -> None:
    config = StorageConfig(backend="posix", root=str(tmp_path))
    result = WriteJob(identity("write", "/w/n0/0"), config, str(tmp_path / "nope"), 1000)()
    assert result.status == "error" and result.start == 0 and result.ready == 0
    assert "FileNotFoundError" in result.error and "partial" not in result.error


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Root of every PosixStorage closed."""
    closed: list[str] = []
    monkeypatch.setattr(PosixStorage, "close", lambda self: closed.append(self.root))
    return closed


def test_every_way_out_of_a_job_closes_the_backend(tmp_path: Path, closes: list[str]) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"x" * 5000)
    store = tmp_path / "store"
    store.mkdir()
    config = StorageConfig(backend="posix", root=str(store))
    write = identity("write", "/w/n0/0")
    assert WriteJob(write, config, str(ref), 1000)().ok  # success
    refused = WriteJob(write, config, str(ref), 1000, on_existing="refuse")()  # early return
    assert refused.status == "error" and "already exists" in refused.error
    read = identity("read", "/w/n0/missing", str(tmp_path / "copy"))
    assert ReadJob(read, config, 1000)().status == "error"  # failure
    assert closes == [str(store)] * 3


def test_failed_read_keeps_its_timing_and_what_arrived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closes: list[str]
) -> None:
    (tmp_path / "store" / "r").mkdir(parents=True)
    (tmp_path / "store" / "r" / "f").write_bytes(b"y" * 5000)
    original = PosixStorage.read_stream

    def breaking(self: PosixStorage, path: str, chunk_size: int) -> Iterable[bytes]:
        for number, chunk in enumerate(original(self, path, chunk_size)):
            if number == 2:
                raise OSError(104, "Connection reset by peer")
            yield chunk

    monkeypatch.setattr(PosixStorage, "read_stream", breaking)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    local = tmp_path / "copies" / "0"
    result = ReadJob(identity("read", "/r/f", str(local)), config, chunk_size=1000)()
    assert result.status == "error" and "Connection reset by peer" in result.error
    assert result.error.startswith("hostA: /r/f: ")
    assert "partial" not in result.error  # reads have no storage-side cleanup
    assert 0 < result.ready <= result.start <= result.end
    assert result.bytes == 2000 and result.checksum == hashlib.sha256(b"y" * 2000).hexdigest()
    assert len(closes) == 1


def test_interrupt_is_not_turned_into_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closes: list[str]
) -> None:
    (tmp_path / "store").mkdir()

    def interrupted(self: PosixStorage, path: str, chunk_size: int) -> Iterable[bytes]:
        raise KeyboardInterrupt
        yield b""  # pragma: no cover - makes this a generator

    monkeypatch.setattr(PosixStorage, "read_stream", interrupted)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    job = ReadJob(identity("read", "/r/f", str(tmp_path / "copy")), config, chunk_size=1000)
    with pytest.raises(KeyboardInterrupt):
        job()
    assert len(closes) == 1
