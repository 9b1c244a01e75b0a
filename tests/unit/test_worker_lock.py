"""The lock files of a run on a node: taken only if free, renewed by their holder,
replaced only when the controller says the holder is gone, given back only by it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller.nodes.holders import gone, machine_id, pid_namespace
from parbench.worker.lock import LOCK_NAME, acquire, local_place, release, renew, storage_place
from parbench.worker.protocol import Holder, LockRequest, StorageConfig
from parbench.worker.storage import make_storage

REPO = Path(__file__).resolve().parents[2]
ME = Holder("r1", "t1", "ctl", 100, "me", 1000.0, 2000.0)
OTHER = Holder("r2", "t2", "ctl", 200, "you", 1000.0, 2000.0)


@pytest.fixture(params=["workdir", "storage"])
def place(request, tmp_path: Path):
    if request.param == "workdir":
        return local_place(str(tmp_path))
    (tmp_path / "store").mkdir()
    storage = make_storage(StorageConfig("posix", root=str(tmp_path / "store")))
    return storage_place(storage, "/bench")


def test_a_free_lock_is_taken_and_a_held_one_names_its_holder(place) -> None:
    assert acquire(place, ME, ())["held"]
    refused = acquire(place, OTHER, ())
    assert not refused["held"] and refused["holder"]["run_id"] == "r1"
    assert acquire(place, replace(ME, expires=3000.0), ())["held"]  # renewed by its holder
    assert place.holder().token == "t1"  # its age starts again (the node's clock)


def test_only_a_holder_declared_gone_is_replaced(place) -> None:
    acquire(place, OTHER, ())
    taken = acquire(place, ME, ("t2",))
    assert taken["held"] and taken["replaced"]["run_id"] == "r2"
    assert place.holder().token == "t1"


def test_release_leaves_anyone_elses_lock(place) -> None:
    acquire(place, OTHER, ())
    assert release(place, ME)["holder"]["token"] == "t2"
    assert place.holder().token == "t2"
    assert release(place, OTHER) == {"path": place.path, "held": False}
    assert place.holder() is None


def test_the_workdir_lock_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / LOCK_NAME).symlink_to(target)
    with pytest.raises(OSError):
        local_place(str(tmp_path)).read()
    assert not target.exists()


def test_gone_holders() -> None:
    here = socket.gethostname()
    alive = {
        **OTHER.__dict__, "controller": here, "pid": os.getpid(), "expires": 2e10,
        "machine": machine_id(), "pidns": pid_namespace(),
    }  # fmt: skip
    assert gone(alive, age=1.0) is None
    assert "lease of" in gone({**alive, "lease": 60.0}, age=61.0)  # the node's clock
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert "is not running" in gone({**alive, "pid": int(dead.stdout)})
    assert gone({**alive, "controller": "another-host", "pid": int(dead.stdout)}) is None


def test_the_lock_command_answers_in_one_line(tmp_path: Path) -> None:
    request = LockRequest("acquire", ME, str(tmp_path)).to_json()
    done = subprocess.run(
        [sys.executable, "-m", "worker", "lock", request],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "parbench")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    word, reply = done.stdout.strip().split(" ", 1)
    assert word == "parbench-lock"
    assert json.loads(reply) == {
        "dst": None,
        "workdir": {"held": True, "path": str(tmp_path / LOCK_NAME), "replaced": None},
    }


def _fresh(place, tmp_path: Path):
    """Another handle on the same lock file (another controller's request)."""
    if place.path.startswith(str(tmp_path)):
        return local_place(str(tmp_path))
    storage = make_storage(StorageConfig("posix", root=str(tmp_path / "store")))
    return storage_place(storage, "/bench")


def _local_file(place, tmp_path: Path) -> Path:
    path = Path(place.path)
    return (
        path
        if path.is_absolute() and str(path).startswith(str(tmp_path))
        else (tmp_path / "store" / place.path.lstrip("/"))
    )


def _race(*jobs):
    """Run ``jobs`` at the same moment, each in its own thread; their results in order."""
    gate = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i: int) -> None:
        gate.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    return results


def test_two_controllers_taking_over_one_stale_lock_never_both_hold_it(place, tmp_path) -> None:
    a, b = replace(ME, token="ta", run_id="ra"), replace(ME, token="tb", run_id="rb")
    for _ in range(150):
        assert acquire(place, OTHER, ())["held"]  # the stale holder
        first, second = _fresh(place, tmp_path), _fresh(place, tmp_path)
        told = _race(partial(acquire, first, a, ("t2",)), partial(acquire, second, b, ("t2",)))
        held = [t for t in told if t["held"]]
        assert len(held) == 1, told
        winner = a if told[0]["held"] else b
        assert place.holder().token == winner.token
        loser = told[1] if told[0]["held"] else told[0]
        assert loser.get("holder", {}).get("token") == winner.token, loser
        release(place, winner)
        assert place.holder() is None


def test_a_release_racing_a_takeover_never_removes_the_new_holders_lock(place, tmp_path) -> None:
    for _ in range(150):
        assert acquire(place, ME, ())["held"]
        mine, theirs = _fresh(place, tmp_path), _fresh(place, tmp_path)
        told = _race(partial(release, mine, ME), partial(acquire, theirs, OTHER, ("t1",)))
        assert "error" not in told[0] and "error" not in told[1], told
        assert told[1]["held"]  # gone either way: released or taken over
        assert place.holder() is not None and place.holder().token == "t2"
        release(place, OTHER)


def test_a_refusal_tells_the_lock_files_age_on_the_nodes_clock(place, tmp_path) -> None:
    acquire(place, OTHER, ())
    old = time.time() - 500
    os.utime(_local_file(place, tmp_path), (old, old))
    refused = acquire(place, ME, ())
    assert not refused["held"] and 499 < refused["age"] < 510


def test_a_renewal_refreshes_only_a_lock_still_held(place, tmp_path) -> None:
    assert not renew(place, ME)["held"]  # nothing to renew: never made anew
    assert place.holder() is None
    acquire(place, ME, ())
    old = time.time() - 500
    os.utime(_local_file(place, tmp_path), (old, old))
    renewed = renew(place, replace(ME, expires=5000.0))
    assert renewed["held"] and place.holder().token == "t1"
    assert time.time() - _local_file(place, tmp_path).stat().st_mtime < 5
    acquire(place, OTHER, ("t1",))  # taken over meanwhile: lost, and said
    lost = renew(place, ME)
    assert not lost["held"] and lost["holder"]["token"] == "t2"
    assert place.holder().token == "t2"


def test_an_empty_lock_file_left_by_a_crash_is_cleared_and_said(place, tmp_path) -> None:
    path = _local_file(place, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    old = time.time() - 60
    os.utime(path, (old, old))
    taken = acquire(place, ME, ())
    assert taken["held"] and "empty" in taken["cleared"], taken
    assert place.holder().token == "t1"


def test_a_fresh_empty_or_garbled_lock_file_says_how_to_clear_it(place, tmp_path) -> None:
    path = _local_file(place, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # being written by someone this very moment, or not
    fresh = acquire(place, ME, ())
    assert not fresh["held"] and "empty" in fresh["error"] and place.path in fresh["error"]
    assert str(path) in fresh["clear"] and fresh["clear"].startswith("rm ")
    path.write_bytes(b"{not json")
    garbled = acquire(place, ME, ())
    assert not garbled["held"] and "cannot be read" in garbled["error"]
    assert str(path) in garbled["clear"]
    assert path.read_bytes() == b"{not json"  # never removed without a person deciding


class FakeMaster:
    """Alluxio's namespace as its proxy shows it: a create fails on an existing file, a
    rename on a missing source or an existing target, each one atomic."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, float]] = {}
        self.guard = threading.Lock()

    def client(self) -> SimpleNamespace:
        from alluxio import exceptions

        master, pending, reading = self, {}, {}

        def create_file(path: str, opt: object) -> str:
            with master.guard:
                if path in master.files:
                    raise exceptions.AlreadyExistsError(path)
                master.files[path] = (b"", time.time())
            return path

        def write(path: str) -> SimpleNamespace:
            def put(chunks) -> int:
                data = b"".join(chunks)
                pending[path] = data
                return len(data)

            return SimpleNamespace(write=put, close=lambda: None)

        def close(path: str) -> None:
            if path in pending:
                with master.guard:
                    master.files[path] = (pending.pop(path), master.files[path][1])

        def open_file(path: str, opt: object) -> str:
            with master.guard:
                if path not in master.files:
                    raise exceptions.NotFoundError(path)
                reading[path] = master.files[path][0]
            return path

        def read(path: str) -> SimpleNamespace:
            data = [reading.pop(path)]

            def chunk(size: int) -> bytes:
                return data.pop() if data else b""

            return SimpleNamespace(read=chunk, close=lambda: None)

        def rename(path: str, dst: str) -> None:
            with master.guard:
                if path not in master.files:
                    raise exceptions.NotFoundError(path)
                if dst in master.files:
                    raise exceptions.AlreadyExistsError(dst)
                master.files[dst] = master.files.pop(path)

        def get_status(path: str) -> SimpleNamespace:
            with master.guard:
                if path not in master.files:
                    raise exceptions.NotFoundError(path)
                return SimpleNamespace(last_modification_time_ms=master.files[path][1] * 1000)

        def delete(path: str) -> None:
            with master.guard:
                if master.files.pop(path, None) is None:
                    raise exceptions.NotFoundError(path)

        return SimpleNamespace(
            create_file=create_file, write=write, close=close, open_file=open_file,
            read=read, rename=rename, get_status=get_status, delete=delete,
            exists=lambda path: path in master.files,
            create_directory=lambda path, opt: None,
        )  # fmt: skip

    def place(self):
        storage = make_storage(StorageConfig("alluxio", "localhost", 39999, timeout=5))
        storage.client = self.client()
        return storage_place(storage, "/bench")


def test_the_storage_root_lock_in_alluxio_is_taken_over_by_one_of_two(tmp_path) -> None:
    master = FakeMaster()
    place = master.place()
    assert place.clear == "alluxio fs rm /bench/.parbench-lock"
    a, b = replace(ME, token="ta", run_id="ra"), replace(ME, token="tb", run_id="rb")
    for _ in range(100):
        assert acquire(place, OTHER, ())["held"]
        first, second = master.place(), master.place()
        told = _race(partial(acquire, first, a, ("t2",)), partial(acquire, second, b, ("t2",)))
        assert [t["held"] for t in told].count(True) == 1, told
        winner = a if told[0]["held"] else b
        assert place.holder().token == winner.token
        assert renew(place, winner)["held"] and place.holder().token == winner.token
        assert release(place, winner) == {"path": place.path, "held": False}
        assert master.files == {}  # nothing left aside


def test_a_lock_in_storage_is_never_seen_half_written() -> None:
    """While a holder writes its lock, another run finds no lock (so it cannot move the
    holder's lock aside half written and lose its content): it is published whole."""
    master = FakeMaster()
    place, other = master.place(), master.place()
    seen: list = []
    write_stream = place.storage.write_stream

    def writing(path, chunks, *args, **kwargs):
        def chunks_seen():
            for chunk in chunks:
                seen.append(other.state())  # what another run sees right now
                yield chunk

        return write_stream(path, chunks_seen(), *args, **kwargs)

    place.storage.write_stream = writing
    assert acquire(place, ME, ())["held"]
    assert seen == [None] and other.holder() == ME
