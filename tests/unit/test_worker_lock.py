"""The lock files of a run on a node: taken only if free, renewed by their holder,
replaced only when the controller says the holder is gone, given back only by it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from controller.locks import gone
from worker.lock import LOCK_NAME, acquire, local_place, release, storage_place
from worker.protocol import Holder, LockRequest, StorageConfig
from worker.storage import make_storage

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
    assert place.holder().expires == 3000.0


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
    alive = {**OTHER.__dict__, "controller": here, "pid": os.getpid(), "expires": 2e10}
    assert gone(alive) is None
    assert "lease ended" in gone({**alive, "expires": 1.0})
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
        env={**os.environ, "PYTHONPATH": str(REPO)},
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
