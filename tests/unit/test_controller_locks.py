"""The controller's side of a run's locks, against nodes that answer in this process
(worker/lock.py run on local folders, no SSH): a lease judged on the node's clock, a
pid trusted only in this very pid namespace, a lease renewed while a command runs, and
a lock reply or lock file that cannot be understood said in one line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller.nodes.fleet import Fleet, using
from parbench.controller.nodes.holders import gone, machine_id, pid_namespace
from parbench.controller.nodes.locks import LockFailed, RunLocks
from parbench.controller.run.inventory import load
from parbench.worker import lock as worker_lock

INVENTORY = """
defaults: {{clients: 1, dst: /bench, data: 4096, backend: posix, posix_root: {root}}}
nodes:
  - {{id: n0, host: h0, workdir: {w0}}}
  - {{id: n1, host: h1, workdir: {w1}}}
"""


class Node:
    """A connection that answers ``python -m worker lock`` as a node would, or with
    ``answer`` when one is set."""

    answer: str | None = None
    one_at_a_time = threading.Lock()

    def __init__(self) -> None:
        self.is_connected = True

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def run(self, command: str, **kwargs):
        if Node.answer is not None:
            return SimpleNamespace(stdout=Node.answer, stderr="", exited=0)
        out = io.StringIO()
        # sys.stdout is one for the process and the nodes are asked from a thread each: one
        # at a time, or a node's reply lands in another's buffer ("no answer", seen in CI)
        with Node.one_at_a_time, contextlib.redirect_stdout(out):
            worker_lock.main(shlex.split(command)[-1])
        return SimpleNamespace(stdout=out.getvalue(), stderr="", exited=0)


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("w0", "w1", "store"):
        (tmp_path / name).mkdir()
    (tmp_path / "inv.yaml").write_text(
        INVENTORY.format(root=tmp_path / "store", w0=tmp_path / "w0", w1=tmp_path / "w1")
    )
    monkeypatch.setattr(Node, "answer", None)
    with using(Fleet(connect=lambda inventory, node: Node())):  # nodes answering here
        yield load(tmp_path / "inv.yaml")


def _holder(**changes) -> dict:
    here = {
        "run_id": "r9", "token": "t9", "controller": os.uname().nodename, "pid": os.getpid(),
        "user": "me", "since": 1000.0, "expires": 1780.0, "machine": machine_id(),
        "lease": 780.0, "pidns": pid_namespace(),
    }  # fmt: skip
    return {**here, **changes}


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def test_a_lease_is_judged_by_the_lock_files_age_on_the_node_never_by_two_clocks() -> None:
    far = _holder(controller="elsewhere", machine="m2", since=1.0, expires=781.0, lease=0.0)
    assert gone(far, age=10.0) is None  # its clock says 1970: the node's says 10 s old
    assert "lease of 780 s ended" in gone(far, age=900.0)
    assert gone({**far, "since": 2e10, "expires": 2e10 + 780}, age=900.0) is not None
    assert gone(_holder(controller="elsewhere", lease=60.0), age=61.0) is not None


def test_a_pid_is_asked_about_only_in_this_very_pid_namespace() -> None:
    dead = _dead_pid()
    assert "is not running" in gone(_holder(pid=dead), age=1.0)
    assert gone(_holder(), age=1.0) is None  # this process: alive
    # a container sharing this host name and machine id, with pids of its own
    assert gone(_holder(pid=dead, pidns="pid:[1]"), age=1.0) is None
    assert gone(_holder(pid=dead, pidns=""), age=1.0) is None  # an older holder: unknown
    assert gone(_holder(pid=dead, machine=""), age=1.0) is None
    assert gone(_holder(pid=dead, machine="another"), age=1.0) is None


def test_a_lease_is_renewed_while_the_command_runs_and_a_lost_lock_is_said(
    inventory, tmp_path: Path
) -> None:
    held = RunLocks(inventory, "r1")
    held.acquire(inventory.nodes)
    files = [tmp_path / "w0" / ".parbench-lock", tmp_path / "w1" / ".parbench-lock",
             tmp_path / "store" / "bench" / ".parbench-lock"]  # fmt: skip
    old = time.time() - 600
    for f in files:
        os.utime(f, (old, old))
    held.renew(every=0.0)
    assert all(time.time() - f.stat().st_mtime < 5 for f in files)
    before = files[0].stat().st_mtime
    held.renew()  # just renewed: not asked again
    assert files[0].stat().st_mtime == before
    theirs = _holder(token="t-other", run_id="r-other", controller="elsewhere", machine="m2")
    files[1].unlink()
    files[1].write_text(json.dumps(theirs))  # taken over meanwhile (its lease ran out)
    with pytest.raises(LockFailed) as lost:
        held.renew(every=0.0)
    said = str(lost.value)
    assert "\n" not in said and "n1" in said and str(files[1]) in said and "r-other" in said
    assert json.loads(files[1].read_text())["token"] == "t-other"  # theirs, left alone
    held.release()


def test_a_reply_that_is_not_json_is_one_line_naming_the_node(inventory) -> None:
    Node.answer = 'parbench-lock {"dst": null}\n'  # JSON, but not the reply expected
    with pytest.raises(LockFailed) as failed:
        RunLocks(inventory, "r0").acquire(inventory.nodes[:1])
    said = str(failed.value)
    assert "\n" not in said and "n0" in said and "no workdir" in said, said
    Node.answer = "parbench-lock {this is not json\n"
    with pytest.raises(LockFailed) as failed:
        RunLocks(inventory, "r1").acquire(inventory.nodes[:1])
    said = str(failed.value)
    assert "\n" not in said and "n0" in said and "not JSON" in said, said
    Node.answer = 'parbench-lock {"workdir": {"path": "/w", "held": "yes"}, "dst": null}\n'
    with pytest.raises(LockFailed) as failed:
        RunLocks(inventory, "r2").acquire(inventory.nodes[:1])
    said = str(failed.value)
    assert "\n" not in said and "n0" in said and "workdir.held" in said, said


def test_an_empty_lock_file_is_said_with_the_command_that_clears_it(
    inventory, tmp_path: Path, capsys
) -> None:
    lock = tmp_path / "w1" / ".parbench-lock"
    lock.write_text("")
    with pytest.raises(LockFailed) as failed:
        RunLocks(inventory, "r1").acquire(inventory.nodes)
    said = str(failed.value)
    assert "\n" not in said and "n1" in said and str(lock) in said and "empty" in said
    assert f"rm -f -- {lock}" in said and "h1" in said, said
    old = time.time() - 60
    os.utime(lock, (old, old))  # a crash's leftover: cleared, and said
    held = RunLocks(inventory, "r2")
    held.acquire(inventory.nodes)
    assert "cleared the lock file" in capsys.readouterr().err
    held.release()


def test_a_lock_whose_lease_ended_is_taken_over_through_the_worker(
    inventory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole takeover path of RunLocks.acquire: refused, judged gone by the lock
    file's age, asked again with take_over, the worker moves it aside atomically."""
    theirs = _holder(token="t-gone", run_id="r-gone", controller="elsewhere", lease=60.0)
    for workdir in ("w0", "w1"):
        lock = tmp_path / workdir / ".parbench-lock"
        lock.write_text(json.dumps(theirs))
        os.utime(lock, (time.time() - 120, time.time() - 120))
    held = RunLocks(inventory, "r1")
    held.acquire(inventory.nodes)
    assert sorted(held.nodes) == ["n0", "n1"]
    for workdir in ("w0", "w1"):
        assert json.loads((tmp_path / workdir / ".parbench-lock").read_text())["run_id"] == "r1"
    assert capsys.readouterr().err.count("took over the lock") == 2
    held.release()
