from __future__ import annotations

import pytest

from worker.clean import UnsafePath, clean
from worker.storage import PosixStorage, StorageConfig


@pytest.fixture
def storage(tmp_path):
    root = tmp_path / "mount"
    root.mkdir()
    return PosixStorage(StorageConfig(backend="posix", root=str(root)))


def test_clean_removes_the_nodes_files_and_numbered_copies_only(tmp_path, storage):
    mount = tmp_path / "mount"
    (mount / "bench" / "n0").mkdir(parents=True)
    (mount / "bench" / "n0" / "0").write_text("x")
    (mount / "bench" / "n1").mkdir()
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "0").write_text("x")
    (copies / "1").write_text("x")
    (copies / "notes.txt").write_text("keep me")
    lines = clean(storage, "/bench", "n0", str(copies))
    assert lines == ["deleted /bench/n0", f"deleted 2 read copies in {copies}"]
    assert not (mount / "bench" / "n0").exists() and (mount / "bench" / "n1").exists()
    assert sorted(p.name for p in copies.iterdir()) == ["notes.txt"]


def test_clean_twice_is_harmless(tmp_path, storage):
    lines = clean(storage, "/bench", "n0", str(tmp_path / "none"))
    assert lines[0] == "absent /bench/n0"


@pytest.mark.parametrize(
    ("dst", "node", "local"),
    [
        ("/", "n0", "/tmp/x"),
        ("bench", "n0", "/tmp/x"),
        ("/a/../b", "n0", "/tmp/x"),
        ("/bench", "..", "/tmp/x"),
        ("/bench", "n0", "/"),
        ("/bench", "n0", "copies"),
    ],
)
def test_clean_refuses_unsafe_roots(storage, dst, node, local):
    with pytest.raises(UnsafePath):
        clean(storage, dst, node, local)
