"""Phases with a duration: files one after another until a common end, read back in turn,
every one of them verified; on the posix backend in-process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from parbench.worker.clients import Identity
from parbench.worker.protocol import is_nth_of, nth_path
from parbench.worker.storage import PosixStorage, StorageConfig
from parbench.worker.transfer import ReadJob, WriteJob
from parbench.worker.verify import ReferenceDigest, VerifyJob


def identity(phase: str, path: str, local: str | None = None) -> Identity:
    return Identity("r", phase, "n0", 0, "hostA", "posix", path, local)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[StorageConfig, Path, bytes]:
    data = os.urandom(300_000)
    ref = tmp_path / "ref"
    ref.write_bytes(data)
    (tmp_path / "store").mkdir()
    return StorageConfig(backend="posix", root=str(tmp_path / "store")), ref, data


def test_the_names_of_a_sequence() -> None:
    assert [nth_path("/d/n0/3", k) for k in range(3)] == ["/d/n0/3", "/d/n0/3.1", "/d/n0/3.2"]
    assert is_nth_of("3", "3") and is_nth_of("3.12", "3")
    assert not any(is_nth_of(n, "3") for n in ("33", "3.", "3.01", "3.x", "3.0", "13"))


def test_a_write_with_a_duration_moves_files_until_the_end(tmp_path: Path, setup) -> None:
    config, ref, data = setup
    store = tmp_path / "store" / "w" / "n0"
    store.mkdir(parents=True)
    for stale in ("0.40", "0.1", "01", "0.x"):  # an earlier run's sequence and other names
        (store / stale).write_bytes(b"old")
    began = time.time()
    job = WriteJob(identity("write", "/w/n0/0"), config, str(ref), 50_000, duration=0.3)
    result = job(lambda: began)
    assert result.ok and result.replaced and result.files >= 2
    assert result.bytes == result.files * len(data)
    assert result.checksum is None  # nothing hashed on the timed path: verify does it
    assert result.end >= began + 0.3 > result.start >= began
    names = sorted(p.name for p in store.iterdir())
    made = [nth_path("0", k) for k in range(result.files)]
    assert names == sorted([*made, "01", "0.x"])  # the earlier sequence went, others stay
    assert all((store / n).read_bytes() == data for n in made)
    assert result.latency["file"]["count"] == result.files


def test_a_read_goes_round_the_files_until_the_end(tmp_path: Path, setup) -> None:
    config, ref, data = setup
    WriteJob(identity("write", "/w/n0/0"), config, str(ref), 50_000)()
    for k in (1, 2):  # a sequence of three
        (tmp_path / "store" / "w" / "n0" / f"0.{k}").write_bytes(data)
    local = tmp_path / "copies" / "0"
    once = ReadJob(identity("read", "/w/n0/0", str(local)), config, 50_000, files=3)()
    assert once.ok and once.files == 3 and once.bytes == 3 * len(data)
    assert sorted(p.name for p in local.parent.iterdir()) == ["0", "0.1", "0.2"]
    timed = ReadJob(identity("read", "/w/n0/0", str(local)), config, 50_000, duration=0.2, files=3)(
        lambda: time.time()
    )
    assert timed.ok and timed.files >= 3 and timed.bytes == timed.files * len(data)
    assert sorted(p.name for p in local.parent.iterdir()) == ["0", "0.1", "0.2"]
    assert all(p.read_bytes() == data for p in local.parent.iterdir())


def test_verify_checks_every_file_and_names_the_bad_ones(tmp_path: Path, setup) -> None:
    config, ref, data = setup
    store = tmp_path / "store" / "w" / "n0"
    store.mkdir(parents=True)
    for k in range(6):
        (store / nth_path("0", k)).write_bytes(data)
    (store / "0.2").write_bytes(b"short")
    (store / "0.4").unlink()
    (store / "0.5").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # last byte differs
    reference = ReferenceDigest.of(str(ref), "sha256", 65536)
    good = VerifyJob(identity("verify-write", "/w/n0/0"), config, reference, 65536, files=2)()
    assert good.ok and good.files == 2 and good.bytes == 2 * len(data)
    result = VerifyJob(identity("verify-write", "/w/n0/0"), config, reference, 65536, files=6)()
    assert (result.status, result.files, result.bytes) == ("mismatch", 6, 5)
    assert result.error.startswith(
        "hostA: /w/n0/0: 3 of 6 files not ok: /w/n0/0.2: mismatch: size 5 != expected 300000"
    )
    assert "/w/n0/0.4: missing: does not exist" in result.error
    assert "/w/n0/0.5: mismatch: sha256 " in result.error


def test_an_existing_sequence_is_refused_when_asked(tmp_path: Path, setup) -> None:
    config, ref, _ = setup
    (tmp_path / "store" / "w" / "n0").mkdir(parents=True)
    (tmp_path / "store" / "w" / "n0" / "0.3").write_bytes(b"old")
    job = WriteJob(identity("write", "/w/n0/0"), config, str(ref), 50_000, "refuse", duration=1.0)
    result = job()
    assert result.status == "error" and result.files == 0
    assert result.error == "hostA: /w/n0/0: already exists (--on-existing refuse): /w/n0/0.3"
    assert PosixStorage(config).names("/w/n0") == ["0.3"]


def test_a_client_that_begins_after_the_end_still_writes_one_file(tmp_path: Path, setup) -> None:
    config, ref, data = setup
    job = WriteJob(identity("write", "/w/n0/0"), config, str(ref), 50_000, duration=0.5)
    result = job(lambda: time.time() - 10)  # the common start was 10 s ago
    assert result.ok and result.files == 1 and result.bytes == len(data)
