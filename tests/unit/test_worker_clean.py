from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

import parbench.worker.__main__ as worker_main
from parbench.worker import lock
from parbench.worker.clean import NODE_ID, UnsafePath, clean, clean_workdir
from parbench.worker.protocol import (
    ClientTask,
    ExitCode,
    Holder,
    PhaseRequest,
    Reference,
    RequestError,
    WorkdirClean,
)
from parbench.worker.storage import PosixStorage, StorageConfig, StorageError


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


# --- fab clean --data --runs: the node's workdir -----------------------------------------

RUN_A, RUN_B, RUN_HELD = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb", "20260103T000000Z-cccc"


def _workdir(tmp_path: Path) -> tuple[Path, Path]:
    """A workdir as push and runs leave it, and a folder outside it that links point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("not parbench's")
    work = tmp_path / "work"
    for folder in ("worker", "venv", "wheels", "data", "runs"):
        (work / folder).mkdir(parents=True)
    (work / "worker" / "clean.py").write_text("code")
    (work / ".parbench-workdir").write_text("")
    data = work / "data"
    for name in ("generated-1073741824.bin", "generated-1073741824.bin.stamp"):
        (data / name).write_text("generated")
    (data / "generated-5.bin.parbench-new").write_text("partial")
    (data / "5mb.txt").write_text("a pushed reference file")
    (data / "generated-7.bin.old").write_text("not a name generate gives")
    os.symlink(outside / "precious", data / "generated-9.bin")  # a link: left, target too
    (data / "generated-3.bin").mkdir()  # a directory: not a file generate made
    for run in (RUN_A, RUN_B, RUN_HELD, "clean"):
        (work / "runs" / run).mkdir()
        (work / "runs" / run / "write.jsonl").write_text("{}\n")
    os.symlink(outside, work / "runs" / RUN_A / "link")  # inside a run folder: not followed
    os.symlink(outside, work / "runs" / "20260104T000000Z-link")  # a linked "run": left
    (work / "runs" / "notes.txt").write_text("a file, not a run folder")
    return work, outside


def _hold(work: Path, run_id: str) -> None:
    holder = Holder(run_id, "t0k3n", "controller", 1, "me", 0.0, 1e12)
    assert lock.acquire(lock.local_place(str(work)), holder, ())["held"]


def test_clean_workdir_removes_generated_data_and_old_run_folders_only(tmp_path: Path) -> None:
    work, outside = _workdir(tmp_path)
    _hold(work, RUN_HELD)
    lines = clean_workdir(str(work), data=True, runs=True, keep=[RUN_B, "clean"])
    assert lines == [
        f"deleted 3 generated data file(s) in {work / 'data'}",
        f"deleted 1 run folder(s) in {work / 'runs'}; kept {RUN_B}, {RUN_HELD}, clean (in use)",
    ]
    assert sorted(p.name for p in (work / "data").iterdir()) == [
        "5mb.txt",
        "generated-3.bin",
        "generated-7.bin.old",
        "generated-9.bin",
    ]
    assert sorted(p.name for p in (work / "runs").iterdir()) == sorted(
        [RUN_B, RUN_HELD, "clean", "20260104T000000Z-link", "notes.txt"]
    )
    assert (outside / "precious").read_text() == "not parbench's"  # no link was followed
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert sorted(p.name for p in work.iterdir()) == sorted(
        [".parbench-lock", ".parbench-workdir", "data", "runs", "venv", "wheels", "worker"]
    )
    assert (work / "worker" / "clean.py").read_text() == "code"


def test_clean_workdir_does_only_what_it_is_asked(tmp_path: Path) -> None:
    work, _ = _workdir(tmp_path)
    assert clean_workdir(str(work), data=True, runs=False) == [
        f"deleted 3 generated data file(s) in {work / 'data'}"
    ]
    assert len(list((work / "runs").iterdir())) == 6
    assert clean_workdir(str(work), data=False, runs=True) == [
        f"deleted 4 run folder(s) in {work / 'runs'}"  # no lock held, nothing kept
    ]
    assert clean_workdir(str(work), data=False, runs=False) == []
    assert clean_workdir(str(tmp_path / "none"), data=True, runs=True) == [
        f"deleted 0 generated data file(s) in {tmp_path / 'none' / 'data'}",
        f"deleted 0 run folder(s) in {tmp_path / 'none' / 'runs'}",
    ]


@pytest.mark.parametrize("folder", ["data", "runs"])
def test_clean_workdir_refuses_a_linked_folder(tmp_path: Path, folder: str) -> None:
    work, outside = _workdir(tmp_path)
    (outside / "generated-1.bin").write_text("not parbench's")
    (outside / RUN_A).mkdir()
    os.rename(work / folder, tmp_path / "moved")
    os.symlink(outside, work / folder)
    with pytest.raises(UnsafePath, match=f"{work / folder}.*: a symbolic link"):
        clean_workdir(str(work), data=True, runs=True)
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        ["precious", "generated-1.bin", RUN_A]
    )


def test_clean_workdir_refuses_a_linked_or_unsafe_workdir(tmp_path: Path) -> None:
    work, _ = _workdir(tmp_path)
    os.symlink(work, tmp_path / "linked")
    with pytest.raises(UnsafePath, match="a symbolic link"):
        clean_workdir(str(tmp_path / "linked"), data=True, runs=True)
    for bad in ("/", "work", f"{work}/../work"):
        with pytest.raises(UnsafePath):
            clean_workdir(bad, data=True, runs=True)
    assert len(list((work / "data").iterdir())) == 7 and len(list((work / "runs").iterdir())) == 6


def test_clean_workdir_keeps_every_run_when_the_lock_cannot_be_read(tmp_path: Path) -> None:
    work, _ = _workdir(tmp_path)
    (work / ".parbench-lock").write_text("not json")
    with pytest.raises(UnsafePath, match="not deleting run folders: lock file"):
        clean_workdir(str(work), data=False, runs=True)
    assert len(list((work / "runs").iterdir())) == 6


def test_a_clean_request_asks_the_worker_for_the_workdir_too(tmp_path: Path, storage) -> None:
    mount = StorageConfig(backend="posix", root=str(tmp_path / "mount"))
    work, _ = _workdir(tmp_path)
    request = PhaseRequest(
        run_id="clean",
        node="n0",
        phase="clean",
        storage=mount,
        clients=(ClientTask(0, "/bench/n0/0"),),
        dst="/bench",
        local_dst=str(tmp_path / "copies"),
        workdir_clean=WorkdirClean(str(work), data=True, runs=True, keep=(RUN_A,)),
    ).check()
    assert PhaseRequest.from_json(request.to_json()) == request
    assert worker_main.execute(PhaseRequest.from_json(request.to_json())) == ExitCode.OK
    # its own request's folder (runs/clean) stays, as does the run named to keep
    assert sorted(p.name for p in (work / "runs").iterdir()) == sorted(
        [RUN_A, "clean", "20260104T000000Z-link", "notes.txt"]
    )
    assert not (work / "data" / "generated-1073741824.bin").exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"phase": "write"}, "request.workdir_clean"),
        ({"workdir_clean": WorkdirClean("work", runs=True)}, "request.workdir_clean.workdir"),
        ({"workdir_clean": WorkdirClean("/w", keep=("../x",))}, "request.workdir_clean.keep[0]"),
    ],
)
def test_a_bad_workdir_clean_is_refused_naming_it(change: dict, named: str) -> None:
    request = PhaseRequest(
        run_id="clean",
        node="n0",
        phase="clean",
        storage=StorageConfig(backend="posix", root="/mnt"),
        clients=(ClientTask(0, "/bench/n0/0"),),
        dst="/bench",
        local_dst="/copies",
        reference=Reference("/ref", 1, "0" * 64),
        out="/out.jsonl",
        workdir_clean=WorkdirClean("/w", data=True),
    )
    with pytest.raises(RequestError, match=named.replace("[", r"\[")):
        replace(request, **change).check()
