from __future__ import annotations

import os

import pytest

from worker.clean import NODE_ID, UnsafePath, clean
from worker.storage import PosixStorage, StorageConfig, StorageError


@pytest.fixture
def storage(tmp_path):
    root = tmp_path / "mount"
    root.mkdir()
    return PosixStorage(StorageConfig(backend="posix", root=str(root)))


def test_clean_removes_the_nodes_files_and_its_clients_copies_only(tmp_path, storage):
    mount = tmp_path / "mount"
    (mount / "bench" / "n0").mkdir(parents=True)
    (mount / "bench" / "n0" / "0").write_text("x")
    (mount / "bench" / "n1").mkdir()
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "0").write_text("x")
    (copies / "1").write_text("x")
    (copies / "1.1").write_text("x")  # the sequence of a phase with a duration
    (copies / "1.12").write_text("x")
    (copies / "1.01").write_text("not a name parbench gives")
    (copies / "7").write_text("not a copy of this run: cid 7 >= nfile 2")
    (copies / "notes.txt").write_text("keep me")
    lines = clean(storage, "/bench", "n0", str(copies), nfile=2)
    assert lines == ["deleted /bench/n0", f"deleted 4 read copies in {copies}"]
    assert not (mount / "bench" / "n0").exists() and (mount / "bench" / "n1").exists()
    assert sorted(p.name for p in copies.iterdir()) == ["1.01", "7", "notes.txt"]


def test_clean_leaves_symlinks_and_directories_named_like_copies(tmp_path, storage):
    precious = tmp_path / "precious"
    precious.write_text("the link's target")
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "0").write_text("x")
    os.symlink(precious, copies / "1")
    (copies / "2").mkdir()
    lines = clean(storage, "/bench", "n0", str(copies), nfile=3)
    assert lines[1] == f"deleted 1 read copies in {copies}"
    assert sorted(p.name for p in copies.iterdir()) == ["1", "2"]
    assert (copies / "1").is_symlink() and precious.read_text() == "the link's target"


def test_clean_refuses_a_linked_local_dst_before_deleting_anything(tmp_path, storage):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "0").write_text("not a copy")
    os.symlink(elsewhere, tmp_path / "copies")
    (tmp_path / "mount" / "bench" / "n0").mkdir(parents=True)
    with pytest.raises(UnsafePath, match="--local-dst .*: a symbolic link"):
        clean(storage, "/bench", "n0", str(tmp_path / "copies"), nfile=1)
    assert (elsewhere / "0").read_text() == "not a copy"
    assert (tmp_path / "mount" / "bench" / "n0").is_dir()


def test_clean_does_not_follow_links_in_storage(tmp_path, storage):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "0").write_text("not parbench's")
    (tmp_path / "mount" / "bench").mkdir()
    os.symlink(outside, tmp_path / "mount" / "bench" / "n0")
    with pytest.raises(StorageError, match="is a symbolic link; not followed"):
        clean(storage, "/bench", "n0", str(tmp_path / "copies"), nfile=1)
    assert (outside / "0").read_text() == "not parbench's"


def test_clean_removes_the_emptied_copy_directory(tmp_path, storage):
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "0").write_text("x")
    clean(storage, "/bench", "n0", str(copies), nfile=1)
    assert not copies.exists()


def test_clean_twice_is_harmless(tmp_path, storage):
    lines = clean(storage, "/bench", "n0", str(tmp_path / "none"), nfile=2)
    assert lines == ["absent /bench/n0", f"deleted 0 read copies in {tmp_path / 'none'}"]


@pytest.mark.parametrize(
    ("dst", "node", "local"),
    [
        ("/", "n0", "/tmp/x"),
        ("bench", "n0", "/tmp/x"),
        ("/a/../b", "n0", "/tmp/x"),
        ("/bench", "..", "/tmp/x"),
        ("/bench", "n0\n", "/tmp/x"),  # "$" alone matches before a final newline
        ("/bench", "n0/..", "/tmp/x"),
        ("/bench", "n0", "/"),
        ("/bench", "n0", "copies"),
    ],
)
def test_clean_refuses_unsafe_roots(storage, dst, node, local):
    with pytest.raises(UnsafePath):
        clean(storage, dst, node, local, nfile=1)


@pytest.mark.parametrize("nid", ["n0", "node-1.rack_2", "A" * 64])
def test_node_id_accepts_plain_segments(nid):
    assert NODE_ID.fullmatch(nid)


@pytest.mark.parametrize("nid", ["", ".", "..", "-n", "a/b", "a b", "n0\n", "A" * 65])
def test_node_id_refuses_the_rest(nid):
    assert not NODE_ID.fullmatch(nid)
