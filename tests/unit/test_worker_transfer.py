"""Client jobs in-process: source expansion, streaming writes/reads, failure cleanup."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Callable, Iterable

import pytest

from parbench.controller.analysis.stats import summarise
from parbench.controller.output.report import phase_table
from parbench.worker.clients import Identity, no_wait
from parbench.worker.report import format_size, progress_line
from parbench.worker.results import ERROR_LIMIT, ClientResult
from parbench.worker.start import NoStart
from parbench.worker.storage import PosixStorage, StorageConfig
from parbench.worker.transfer import ReadJob, WriteJob, expand_sources


def test_expand_sources() -> None:
    assert expand_sources(["/parbench/n1/{cid}"], 3) == [f"/parbench/n1/{c}" for c in range(3)]
    assert expand_sources(["/bench/big"], 2) == ["/bench/big", "/bench/big"]
    assert expand_sources(["/a", "/b"], 2) == ["/a", "/b"]
    assert expand_sources(["/a/{cid}", "/b/{cid}"], 2) == ["/a/{cid}", "/b/{cid}"]  # literal
    for sources in (["/a", "/b"], []):
        with pytest.raises(ValueError, match="exactly --clients=3"):
            expand_sources(sources, 3)


def identity(phase: str, path: str, local: str = None) -> Identity:  # type: ignore[assignment]
    return Identity("r", phase, "n0", 0, "hostA", "posix", path, local)


def test_write_and_read_stream_in_small_chunks(tmp_path: Path) -> None:
    data = os.urandom(200_001)
    ref = tmp_path / "ref"
    ref.write_bytes(data)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    (tmp_path / "store").mkdir()
    written = WriteJob(identity("write", "/w/n0/0"), config, str(ref), chunk_size=4096)()
    # nothing hashed on the timed path: the bytes are verify's to judge
    assert (written.status, written.bytes, written.checksum) == ("ok", len(data), None)
    assert (tmp_path / "store" / "w" / "n0" / "0").read_bytes() == data

    local = tmp_path / "copies" / "0"
    read = ReadJob(identity("read", "/w/n0/0", str(local)), config, chunk_size=1000)()
    assert (read.status, read.bytes, read.checksum) == ("ok", len(data), None)
    assert local.read_bytes() == data


def test_failed_write_deletes_the_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = tmp_path / "ref"
    ref.write_bytes(b"x" * 10_000)
    (tmp_path / "store").mkdir()
    original = PosixStorage.write_stream

    def failing(self: PosixStorage, path: str, chunks: Iterable[bytes], created, meter) -> None:
        def some() -> Iterable[bytes]:
            for number, chunk in enumerate(chunks):
                if number == 2:
                    raise OSError(28, "No space left on device")
                yield chunk

        original(self, path, some(), created, meter)

    monkeypatch.setattr(PosixStorage, "write_stream", failing)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    result = WriteJob(identity("write", "/w/n0/0"), config, str(ref), chunk_size=1000)()
    assert result.status == "error"
    assert result.error.startswith("hostA: /w/n0/0: posix root ")
    assert "No space left on device" in result.error
    assert result.error.endswith("; partial file deleted")
    assert result.end >= result.start > 0 and result.bytes == 3000  # read from the source so far
    assert result.latency["write"]["count"] == 2  # what was measured before the failure is kept
    assert not (tmp_path / "store" / "w" / "n0" / "0").exists()


def test_a_write_never_deletes_a_file_it_did_not_create(tmp_path: Path) -> None:
    """Another writer makes the file between this write's check and its create: the
    create fails, and the other's file stays as it was."""
    ref = tmp_path / "ref"
    ref.write_bytes(b"mine" * 1000)
    target = tmp_path / "store" / "w" / "n0" / "0"
    (tmp_path / "store").mkdir()

    def someone_else_writes() -> None:  # at the common start, just before our create
        target.write_bytes(b"theirs")

    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    result = WriteJob(identity("write", "/w/n0/0"), config, str(ref), chunk_size=1000)(
        someone_else_writes
    )
    assert result.status == "error" and "File exists" in result.error
    assert result.error.endswith("the file there is not this write's: left alone")
    assert target.read_bytes() == b"theirs"


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

    def breaking(self: PosixStorage, path: str, chunk_size: int, meter) -> Iterable[bytes]:
        for number, chunk in enumerate(original(self, path, chunk_size, meter)):
            if number == 2:
                raise OSError(104, "Connection reset by peer")
            yield chunk

    monkeypatch.setattr(PosixStorage, "read_stream", breaking)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    local = tmp_path / "copies" / "0"
    result = ReadJob(identity("read", "/r/f", str(local)), config, chunk_size=1000)()
    assert result.status == "error" and "Connection reset by peer" in result.error
    assert result.error.startswith("hostA: /r/f: ")
    assert result.error.endswith("; partial copy deleted")
    assert not local.exists()
    assert 0 < result.ready <= result.start <= result.end
    assert result.bytes == 2000 and result.checksum is None
    assert len(closes) == 1


def no_start() -> None:
    raise NoStart("no common start from the controller; not started")


def posix_config(root: Path) -> StorageConfig:
    return StorageConfig(backend="posix", root=str(root))


@pytest.fixture
def stored(tmp_path: Path) -> StorageConfig:
    """A posix store holding /r/f."""
    (tmp_path / "store" / "r").mkdir(parents=True)
    (tmp_path / "store" / "r" / "f").write_bytes(b"data")
    return posix_config(tmp_path / "store")


def read_to(local: Path, config: StorageConfig, wait: Callable[[], None] = no_wait) -> ClientResult:
    return ReadJob(identity("read", "/r/f", str(local)), config, chunk_size=1000)(wait)


@pytest.mark.parametrize("how", ["connect", "no start"])
def test_a_read_failing_in_its_set_up_leaves_no_copy(
    tmp_path: Path, stored: StorageConfig, how: str
) -> None:
    """Not even the previous run's, which verify-read would find fine."""
    local = tmp_path / "copies" / "0"
    local.parent.mkdir()
    local.write_bytes(b"the previous run's copy")
    config = stored if how == "no start" else posix_config(tmp_path / "gone")
    result = read_to(local, config, no_start if how == "no start" else no_wait)
    assert result.status == "error" and result.start == 0
    assert ("not started" if how == "no start" else "connect") in result.error
    assert "partial" not in result.error
    assert not local.exists()


def test_a_read_copy_is_never_written_through_a_link(tmp_path: Path, stored: StorageConfig) -> None:
    precious = tmp_path / "precious"
    precious.write_text("not parbench's")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copies = tmp_path / "copies"
    copies.mkdir()
    os.symlink(precious, copies / "0")
    result = read_to(copies / "0", stored)
    assert result.status == "error"
    assert result.error == (
        f"hostA: /r/f: {copies / '0'} is a symbolic link; move it away to read a copy there"
    )
    assert (copies / "0").is_symlink()
    os.symlink(elsewhere, tmp_path / "linked")  # local_dst itself a link
    result = read_to(tmp_path / "linked" / "0", stored)
    assert result.error == (
        f"hostA: /r/f: local_dst {tmp_path / 'linked'} is a symbolic link; "
        "not writing copies through it"
    )
    (copies / "1").mkdir()
    assert "is not a regular file" in read_to(copies / "1", stored).error
    assert precious.read_text() == "not parbench's" and list(elsewhere.iterdir()) == []


def test_a_link_planted_after_the_check_is_not_followed(
    tmp_path: Path, stored: StorageConfig
) -> None:
    precious = tmp_path / "precious"
    precious.write_text("not parbench's")
    local = tmp_path / "copies" / "0"
    result = read_to(local, stored, lambda: os.symlink(precious, local))
    assert result.status == "error" and "FileExistsError" in result.error
    assert precious.read_text() == "not parbench's" and local.is_symlink()


def test_a_read_replaces_the_previous_copy(tmp_path: Path, stored: StorageConfig) -> None:
    local = tmp_path / "copies" / "0"
    local.parent.mkdir()
    local.write_bytes(b"the previous run's copy, longer than the new one")
    assert read_to(local, stored).ok
    assert local.read_bytes() == b"data"


def test_interrupt_is_not_turned_into_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closes: list[str]
) -> None:
    (tmp_path / "store").mkdir()

    def interrupted(self: PosixStorage, path: str, chunk_size: int, meter) -> Iterable[bytes]:
        raise KeyboardInterrupt
        yield b""  # pragma: no cover - makes this a generator

    monkeypatch.setattr(PosixStorage, "read_stream", interrupted)
    config = StorageConfig(backend="posix", root=str(tmp_path / "store"))
    job = ReadJob(identity("read", "/r/f", str(tmp_path / "copy")), config, chunk_size=1000)
    with pytest.raises(KeyboardInterrupt):
        job()
    assert len(closes) == 1


# --- a real HTTP exchange with a proxy that breaks mid-stream ----------------------------

MIB = 1024 * 1024
ANSWERS = {"create-file": b"1", "open-file": b"2", "delete": b"", "create-directory": b""}


class FakeProxy:
    """An Alluxio REST proxy on loopback, one request per connection, that knows the calls
    a job makes and breaks its stream: after ``cut`` bytes of a write, or of a read's
    answer, it resets the connection (``stall``: stops answering instead); ``dies``: it
    stops listening first, as a killed proxy would."""

    def __init__(self, cut: int, dies: bool = False, stall: bool = False) -> None:
        self.cut, self.dies, self.stall = cut, dies, stall
        self.files: set[str] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.where = f"alluxio proxy 127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def config(self, timeout: float = 10.0) -> StorageConfig:
        return StorageConfig(host="127.0.0.1", port=self.port, timeout=timeout)

    def close(self) -> None:
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with conn, suppress(OSError):  # the client went away
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += _more(conn)
        head, body = head.split(b"\r\n\r\n", 1)
        target = head.split()[1].decode().split("?")[0]
        subject, action = target.rsplit("/", 1)  # /api/v1/paths//w/n0/0 exists
        path = subject[len("/api/v1/paths/") :]
        if action == "write":
            while len(body) < self.cut:
                body += _more(conn)
            self._break(conn)
        elif action == "read":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * self.cut))
            conn.sendall(b"r" * self.cut)
            self._break(conn)
        else:
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            while length and len(body) < int(length.group(1)):
                body += _more(conn)
            self._reply(conn, action, path)

    def _reply(self, conn: socket.socket, action: str, path: str) -> None:
        if action == "exists":
            answer = json.dumps(path in self.files).encode()
        else:
            answer = ANSWERS.get(action, b"")
            if action == "create-file":
                self.files.add(path)
            if action == "delete":
                self.files.discard(path)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
        )

    def _break(self, conn: socket.socket) -> None:
        if self.stall:
            time.sleep(2)
            return
        if self.dies:
            self.listener.close()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST


def _more(conn: socket.socket) -> bytes:
    data = conn.recv(65536)
    if not data:
        raise ConnectionError("the client closed the connection")
    return data


#: what urllib3 makes of a reset while it sends (it reads the answer that never comes)
BROKEN = "(connection reset by peer|remote end closed connection without response|broken pipe)"


@pytest.fixture
def big_ref(tmp_path: Path) -> Path:
    """32 MiB: more than the loopback socket buffers hold, so a cut write fails midway."""
    ref = tmp_path / "ref"
    ref.write_bytes(os.urandom(MIB) * 32)
    return ref


def alluxio_identity(phase: str, path: str, local: str = None) -> Identity:  # type: ignore[assignment]
    return Identity("r", phase, "n0", 0, "hostA", "alluxio", path, local)


def assert_one_line(result: ClientResult, pattern: str) -> None:
    """The record's error: the host and path, then ``pattern``; one line, not too long; the
    chain in ``detail``."""
    assert result.status == "error"
    assert re.fullmatch(f"hostA: {re.escape(result.path)}: {pattern}", result.error)
    assert len(result.error) <= ERROR_LIMIT
    assert result.detail.startswith("Traceback") and "StorageError" in result.detail


def test_a_write_cut_by_a_killed_proxy_is_one_line(big_ref: Path) -> None:
    proxy = FakeProxy(cut=3 * MIB, dies=True)
    result = WriteJob(alluxio_identity("write", "/w/n0/0"), proxy.config(), str(big_ref), MIB)()
    assert 3 * MIB <= result.bytes < 32 * MIB
    assert_one_line(
        result,
        f"{re.escape(proxy.where)}: write: {BROKEN} after {re.escape(format_size(result.bytes))}"
        f"; cleanup failed, a partial file may remain: {re.escape(proxy.where)}: exists: "
        "connection refused",
    )
    assert "ConnectionRefusedError" not in result.detail  # the cleanup's is not the cause


def test_a_write_cut_midway_deletes_its_partial_file(big_ref: Path) -> None:
    proxy = FakeProxy(cut=3 * MIB)
    result = WriteJob(alluxio_identity("write", "/w/n0/0"), proxy.config(), str(big_ref), MIB)()
    proxy.close()
    assert_one_line(
        result,
        f"{re.escape(proxy.where)}: write: {BROKEN} after "
        f"{re.escape(format_size(result.bytes))}; partial file deleted",
    )
    assert proxy.files == set()


@pytest.mark.parametrize(
    ("stall", "cause"), [(False, "connection reset by peer"), (True, "read timed out after 0.5 s")]
)
def test_a_read_cut_midway_is_one_line(tmp_path: Path, stall: bool, cause: str) -> None:
    proxy = FakeProxy(cut=3 * MIB, stall=stall)
    local = tmp_path / "copy"
    identity = alluxio_identity("read", "/w/n1/0", str(local))
    result = ReadJob(identity, proxy.config(timeout=0.5), MIB)()
    proxy.close()
    assert result.bytes <= 3 * MIB
    assert_one_line(
        result,
        f"{re.escape(proxy.where)}: read: {cause} after {re.escape(format_size(result.bytes))}"
        "; partial copy deleted",
    )
    assert not local.exists()


def test_a_failure_is_shown_once_per_place(big_ref: Path) -> None:
    """The worker's progress line and the controller's table carry the short error, once."""
    proxy = FakeProxy(cut=MIB, dies=True)
    result = WriteJob(alluxio_identity("write", "/w/n0/0"), proxy.config(), str(big_ref), MIB)()
    cause = result.error[len("hostA: /w/n0/0: ") :]
    line = progress_line(result)
    assert line.endswith(f"  error: {cause}") and line.count(proxy.where) == 2  # + cleanup's
    table = phase_table(summarise([result])).splitlines()
    assert table[-2:] == ["errors (1):", f"  n0/0 /w/n0/0: error: {cause}"]
