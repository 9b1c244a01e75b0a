"""Backends: posix path mapping (never out of the root) and streaming, alluxio options,
errors and stream handling."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import requests
from alluxio import exceptions

from parbench.worker.hashing import HashingTee, read_chunks, size_and_hash
from parbench.worker.meter import Meter
from parbench.worker.protocol import Measure
from parbench.worker.storage import (
    CAUSE_LIMIT,
    PosixStorage,
    StorageConfig,
    StorageError,
    make_storage,
)
from parbench.worker.storage.alluxio import AlluxioStorage

from .fakewheels import tree

REPO = Path(__file__).resolve().parents[2]


def posix(root: Path) -> PosixStorage:
    storage = make_storage(StorageConfig(backend="posix", root=str(root)))
    assert isinstance(storage, PosixStorage)
    return storage


def test_posix_maps_paths_under_root_only(tmp_path: Path) -> None:
    storage = posix(tmp_path)
    assert storage.local_path("/a/b") == str(tmp_path / "a" / "b")
    assert storage.local_path("a//b/") == str(tmp_path / "a" / "b")
    assert storage.local_path("/") == str(tmp_path)
    assert storage.local_path("/../x") == str(tmp_path / "x")  # normalised at the root
    with pytest.raises(ValueError, match="--root"):
        make_storage(StorageConfig(backend="posix"))


def test_posix_streams_a_file_larger_than_the_chunk_size(tmp_path: Path) -> None:
    data = os.urandom(1_000_003)
    storage = posix(tmp_path)
    storage.connect()
    storage.mkdirs("/d/e")
    storage.mkdirs("/d/e")  # existing directories are fine
    sent = HashingTee(iter([data[i : i + 65536] for i in range(0, len(data), 65536)]))
    storage.write_stream("/d/e/f", sent)
    assert (sent.size, sent.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())
    assert storage.exists("/d/e/f") and storage.size("/d/e/f") == len(data)
    chunks = list(storage.read_stream("/d/e/f", 100_000))
    assert max(map(len, chunks)) == 100_000 and len(chunks) == 11
    assert b"".join(chunks) == data
    stored = str(tmp_path / "d/e/f")
    assert size_and_hash(stored, "sha256", 4096) == (len(data), hashlib.sha256(data).hexdigest())
    with pytest.raises(StorageError, match="File ?Exists"):  # never overwrites
        storage.write_stream("/d/e/f", [b"x"])
    storage.delete("/d/e/f")
    assert not storage.exists("/d/e/f")


def test_posix_errors_name_root_and_operation(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=f"posix root {tmp_path}: mkdirs: NotADirectoryError"):
        posix(tmp_path).mkdirs("/file/sub")
    with pytest.raises(StorageError, match="connect"):
        posix(tmp_path / "file").connect()


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A root whose links lead outside it (``out`` to a folder, ``f`` to a file), and the
    outside folder they lead to."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_text("not parbench's")
    root = tmp_path / "store"
    (root / "n0").mkdir(parents=True)
    os.symlink(outside, root / "out")
    os.symlink(outside / "secret", root / "f")
    os.symlink(outside, root / "n0" / "deep")
    return root, outside


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.write_stream("/out/new", [b"x"]),
        lambda s: s.write_stream("/n0/deep/new", [b"x"]),
        lambda s: list(s.read_stream("/out/secret", 10)),
        lambda s: list(s.read_stream("/f", 10)),
        lambda s: s.size("/f"),
        lambda s: s.size("/out/secret"),
        lambda s: s.exists("/out/secret"),
        lambda s: s.delete("/out/secret"),
        lambda s: s.delete("/f"),
        lambda s: s.delete_tree("/out"),
        lambda s: s.delete_tree("/out/sub"),
        lambda s: s.mkdirs("/out/made"),
        lambda s: s.mkdirs("/n0/deep/made"),
    ],
)
def test_posix_refuses_symlinks_leading_out_of_the_root(
    planted: tuple[Path, Path], operation: Callable[[PosixStorage], object]
) -> None:
    root, outside = planted
    before = tree(outside)
    with pytest.raises(StorageError, match=rf"^posix root {root}: /\S+: .*not followed$"):
        operation(posix(root))
    assert tree(outside) == before


def test_posix_delete_tree_removes_links_not_their_targets(planted: tuple[Path, Path]) -> None:
    root, outside = planted
    before = tree(outside)
    (root / "n0" / "file").write_text("x")
    assert posix(root).delete_tree("/n0")
    assert not (root / "n0").exists() and tree(outside) == before


def test_posix_never_follows_the_file_itself(
    planted: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the file becomes a link after the check (O_NOFOLLOW, O_EXCL)."""
    root, outside = planted
    storage = posix(root)
    monkeypatch.setattr(PosixStorage, "local_path", lambda self, path: str(root) + path)
    with pytest.raises(StorageError, match="read: OSError"):
        list(storage.read_stream("/f", 10))
    with pytest.raises(StorageError, match="write: FileExistsError"):
        storage.write_stream("/f", [b"x"])
    assert (outside / "secret").read_text() == "not parbench's"


def test_posix_links_that_stay_inside_are_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "d").mkdir(parents=True)
    os.symlink("d", real / "alias")  # relative, inside the root
    os.symlink(real, tmp_path / "root")  # the root itself may be a link
    storage = posix(tmp_path / "root")
    storage.write_stream("/alias/f", [b"abc"])
    assert (real / "d" / "f").read_bytes() == b"abc"
    assert b"".join(storage.read_stream("/alias/f", 2)) == b"abc"
    with pytest.raises(StorageError, match="alias is a symbolic link; not followed"):
        storage.delete_tree("/alias")
    # with the root /, as verify-read checks copies, the system's links are fine
    assert posix(Path("/")).size(str(tmp_path / "root" / "d" / "f")) == 3


def test_read_chunks_rejects_bad_size(tmp_path: Path) -> None:
    with open(__file__, "rb") as stream, pytest.raises(ValueError):
        next(read_chunks(stream, 0))


def alluxio(
    write_type: str = "CACHE_THROUGH", read_type: str = "CACHE", port: int = 39999
) -> AlluxioStorage:
    storage = make_storage(
        StorageConfig(
            host="localhost", port=port, write_type=write_type, read_type=read_type, timeout=5
        )
    )
    assert isinstance(storage, AlluxioStorage)
    return storage


def test_alluxio_options_only_use_fields_the_proxy_knows() -> None:
    storage = alluxio("MUST_CACHE", "NO_CACHE")
    assert storage.create_options().json() == {"writeType": "MUST_CACHE", "recursive": True}
    assert storage.open_options().json() == {"readType": "NO_CACHE"}
    assert storage.mkdir_options().json() == {"recursive": True, "writeType": "MUST_CACHE"}
    json.dumps(storage.create_options().json())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_alluxio_unreachable_proxy_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(StorageError) as caught:
        alluxio(port=port).connect()
    assert str(caught.value) == f"alluxio proxy localhost:{port}: exists /: connection refused"


def test_alluxio_errors_are_explained() -> None:
    storage = alluxio()

    def not_found(*args: object) -> None:
        raise exceptions.NotFoundError('Path "/x" does not exist.')

    storage.client.open_file = not_found
    with pytest.raises(StorageError) as caught:
        next(storage.read_stream("/x", 10))
    assert str(caught.value) == (
        "alluxio proxy localhost:39999: open-file: NotFoundError "
        '(NOT_FOUND): Path "/x" does not exist.'
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (exceptions.AlreadyExistsError("/p/0 already exists\n" + "  at alluxio.Master\n" * 50),
         "AlreadyExistsError (ALREADY_EXISTS): /p/0 already exists at alluxio.Master at"),
        (requests.JSONDecodeError("Expecting value", "<html>", 0),
         "the proxy's answer is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ],
)  # fmt: skip
def test_alluxio_proxy_errors_are_one_bounded_line(error: Exception, cause: str) -> None:
    storage = alluxio()

    def failing(*args: object) -> None:
        raise error

    storage.client.create_file = failing
    with pytest.raises(StorageError) as caught:
        storage.write_stream("/p/0", iter([b"ab"]))
    prefix = "alluxio proxy localhost:39999: create-file: "
    message = str(caught.value)
    assert message.startswith(prefix + cause) and "\n" not in message
    assert len(message) <= len(prefix) + CAUSE_LIMIT


def test_alluxio_requests_get_the_default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[object] = []

    def fake_send(self: object, request: object, **kwargs: object) -> None:
        seen.append(kwargs.get("timeout"))
        raise requests.ConnectionError("stop here")

    monkeypatch.setattr(requests.Session, "send", fake_send)
    storage = alluxio()
    with pytest.raises(exceptions.HTTPError):
        storage.client.write(1).write(b"data")  # the library sets no timeout here
    with pytest.raises(exceptions.HTTPError):
        storage.client.exists("/")  # the library passes its own
    assert seen == [5, 5]


class FakeStream:
    def __init__(self, log: List[str], fail_after: int = -1, data: bytes = b"") -> None:
        self.log, self.fail_after, self.data = log, fail_after, data

    def write(self, chunks: Iterator[bytes]) -> int:
        total = 0
        for number, chunk in enumerate(chunks):
            if number == self.fail_after:
                raise exceptions.HTTPError("Failed to send POST request")
            total += len(chunk)
        return total

    def read(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def close(self) -> None:
        self.log.append("stream closed")


class FakeClient:
    """Stands for alluxio.Client: records the calls the backend makes."""

    def __init__(self, fail_after: int = -1, data: bytes = b"") -> None:
        self.log: List[str] = []
        self.stream = FakeStream(self.log, fail_after, data)

    def create_file(self, path: str, opt: object) -> int:
        self.log.append(f"create {path} {opt!r}")
        return 7

    def open_file(self, path: str, opt: object) -> int:
        self.log.append(f"open {path} {opt!r}")
        return 8

    def write(self, file_id: int) -> FakeStream:
        return self.stream

    read = write

    def close(self, file_id: int) -> None:
        self.log.append(f"close {file_id}")


def test_alluxio_write_stream_sends_one_generator_and_closes() -> None:
    storage = alluxio()
    storage.client = FakeClient()
    meter = Meter(Measure())
    storage.write_stream("/p/0", iter([b"ab", b"cd"]), meter=meter)
    assert storage.client.log == [
        'create /p/0 {"recursive": true, "writeType": "CACHE_THROUGH"}',
        "stream closed",
        "close 7",
    ]
    counts = {op: h["count"] for op, h in meter.latency_record().items()}
    assert counts == {"create": 1, "write": 2, "close": 1}


def test_alluxio_failed_write_reports_and_releases() -> None:
    storage = alluxio()
    storage.client = FakeClient(fail_after=1)
    with pytest.raises(StorageError, match="write: HTTPError: Failed to send POST"):
        storage.write_stream("/p/0", iter([b"ab", b"cd"]))
    assert storage.client.log[1:] == ["stream closed", "close 7"]


def test_alluxio_read_stream_reads_chunks_and_closes() -> None:
    storage = alluxio(read_type="CACHE_PROMOTE")
    storage.client = FakeClient(data=b"x" * 25)
    meter = Meter(Measure())
    assert [len(chunk) for chunk in storage.read_stream("/p/0", 10, meter)] == [10, 10, 5]
    counts = {op: h["count"] for op, h in meter.latency_record().items()}
    assert counts == {"open": 1, "read": 3, "ttfb": 1, "close": 1}
    assert storage.client.log == [
        'open /p/0 {"readType": "CACHE_PROMOTE"}',
        "stream closed",
        "close 8",
    ]


def test_size_and_hash_returns_the_size_and_hex_digest(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * (1 << 20) + 7)  # more than one default chunk
    path.write_bytes(data)
    assert size_and_hash(str(path)) == (len(data), hashlib.sha256(data).hexdigest())
    assert size_and_hash(str(path), "md5")[1] == hashlib.md5(data).hexdigest()
    assert size_and_hash(str(path), "sha1", 1000)[1] == hashlib.sha1(data).hexdigest()


@pytest.mark.parametrize(("backend", "loaded"), [("alluxio", True), ("posix", False)])
def test_preload_imports_the_backend_s_client_once_for_the_processes_forked_later(
    backend: str, loaded: bool
) -> None:
    code = (
        "import sys; from parbench.worker.storage import preload; "
        f"preload({backend!r}); print(sorted({{'alluxio.client', 'requests'}} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == (str(["alluxio.client", "requests"]) if loaded else "[]")


def test_posix_publish_without_hard_links_renames_only_where_no_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alluxio FUSE has no hard links (link(2): EPERM): publish falls back to a rename that
    never replaces (renameat2 RENAME_NOREPLACE), on this real file system."""
    import errno

    from parbench.worker.storage import posix as posix_module

    def no_links(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(posix_module.os, "link", no_links)
    storage = posix(tmp_path)
    (tmp_path / "staged-1").write_bytes(b"first")
    (tmp_path / "staged-2").write_bytes(b"second")
    assert storage.publish("/staged-1", "/lock") is True
    assert (tmp_path / "lock").read_bytes() == b"first"
    assert storage.publish("/staged-2", "/lock") is False  # one is there: never replaced
    assert (tmp_path / "lock").read_bytes() == b"first"
    assert (tmp_path / "staged-2").read_bytes() == b"second"
    with pytest.raises(StorageError, match="no hard links here.*staged-3"):
        storage.publish("/staged-3", "/other")  # a missing source is an error, not False
