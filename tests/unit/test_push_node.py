"""push_node on a "node" that is this machine: which workdirs it uses, and what it deletes.

The connection runs commands locally through invoke (as Fabric's would over SSH), the
probe's session is a local process, and the real probe and bootstrap do their work in a
temporary folder.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from invoke import Config, Context

from parbench.controller.nodes import nodeprobe, push
from parbench.controller.nodes.agents import Agents
from parbench.controller.nodes.locks import LockHeld, RunLocks
from parbench.controller.nodes.remote import StepError
from parbench.controller.run import reference
from parbench.controller.run.inventory import load
from parbench.worker import generate, probe

from .fakewheels import ALLUXIO, ALLUXIO_OLD, REQUESTS, make_wheel, tree


class LocalConnection(Context):
    def __init__(self) -> None:
        super().__init__(Config(overrides={"run": {"in_stream": False}}))

    def put(self, local: str, remote: str) -> None:
        shutil.copyfile(local, remote)

    def sftp(self) -> SimpleNamespace:
        return SimpleNamespace(posix_rename=os.replace)


class LocalSession:
    """The probe's session as a local process (controller/nodes/nodeprobe.py's Session). As
    paramiko's channel does, a read waiting longer than ``timeout`` raises TimeoutError."""

    def __init__(self, command: str) -> None:
        self.timeout: float | None = None
        self.proc = subprocess.Popen(
            command, shell=True, bufsize=0,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._read = b""

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())

    def readline(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._read:
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            if not waiting.poll(None if self.timeout is None else self.timeout * 1000):
                raise TimeoutError(f"no line within {self.timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._read += chunk
        line, newline, self._read = self._read.partition(b"\n")
        return (line + newline).decode(errors="replace")

    def finish(self) -> tuple[int, str]:
        _, err = self.proc.communicate()
        return self.proc.returncode, err.decode(errors="replace")

    def abandon(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()


@pytest.fixture(autouse=True)
def local_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodeprobe, "open_session", lambda conn, command: LocalSession(command))


def run_push(
    tmp_path: Path,
    workdir: Path,
    wheels: tuple[str, ...] = (ALLUXIO, REQUESTS),
    defaults: str = "",
    agents: Agents | None = None,
    held: RunLocks | None = None,
):
    (tmp_path / "inventory.yaml").write_text(f"{defaults}nodes:\n  - {{id: n0, host: localhost}}\n")
    inventory = load(tmp_path / "inventory.yaml")
    node = replace(inventory.nodes[0], workdir=str(workdir), python=sys.executable)
    local = [make_wheel(tmp_path / "cache", name) for name in wheels]
    data = bool(defaults)  # generated data: nothing to copy
    arts = push.artifacts(inventory, local, data=data)
    conn = cast(push.Connection, LocalConnection())
    return push.push_node(conn, node, inventory, arts, data, agents, held)


def run_locks(tmp_path: Path, run_id: str) -> RunLocks:
    """A run's locks that are not given back at exit (the test looks at them)."""
    (tmp_path / "inventory.yaml").write_text("nodes:\n  - {id: n0, host: localhost}\n")
    held = RunLocks(load(tmp_path / "inventory.yaml"), run_id)
    atexit.unregister(held.release)
    return held


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path below ``root`` with its bytes, mtime and inode: what a rebuild changes."""
    return {
        str(p.relative_to(root)): (
            p.read_bytes() if p.is_file() and not p.is_symlink() else None,
            p.lstat().st_mtime_ns,
            p.lstat().st_ino,
        )
        for p in sorted(root.rglob("*"))
    }


def test_a_workdir_another_run_holds_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    """A second run pushing while the first runs: refused, and the first run's worker,
    venv and data are as they were (the lock is taken before anything changes)."""
    workdir = tmp_path / "work"
    first = run_locks(tmp_path, "first")
    first.holder = replace(first.holder, token="another-process")  # as another fab's
    run_push(tmp_path, workdir, (ALLUXIO_OLD, REQUESTS), held=first)
    lock = workdir / ".parbench-lock"
    assert json.loads(lock.read_text())["run_id"] == "first"  # held by push itself
    (workdir / "worker" / "probe.py").write_text("# the first run's, say\n")  # stale now
    before = snapshot(workdir)
    shutil.rmtree(tmp_path / "cache")
    second = run_locks(tmp_path, "second")
    with pytest.raises(LockHeld) as info:  # a new runtime and worker file would be pushed
        run_push(tmp_path, workdir, (ALLUXIO, REQUESTS), held=second)
    assert str(info.value).startswith(
        f"the workdir {lock} (on n0) is locked by run first (controller "
    )
    assert str(info.value).endswith("; wait for it to finish, or stop it")
    assert snapshot(workdir) == before
    assert second.refusals == [info.value] and second.nodes == {}
    with pytest.raises(LockHeld):
        second.raise_refusal()
    first.nodes.clear()


def _gone_holder(workdir: Path) -> dict:
    """A lock in ``workdir`` whose holder's lease ended (not renewed for 120 s > 60 s)."""
    holder = {
        "run_id": "20200101T000000Z-dead", "token": "gone", "controller": "elsewhere",
        "pid": 1, "user": "someone", "since": time.time() - 600, "expires": time.time() + 3600,
        "lease": 60.0,
    }  # fmt: skip
    lock = workdir / ".parbench-lock"
    lock.write_text(json.dumps(holder))
    os.utime(lock, (time.time() - 120, time.time() - 120))
    return holder


def test_a_lock_whose_holder_is_gone_is_taken_over_before_the_push_changes_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A holder whose lease ended (by the lock file's age, the node's clock) no longer
    keeps the push out: the probe takes its lock over (moved aside, checked, deleted, ours
    made) before the push touches the workdir, and says so."""
    workdir = tmp_path / "work"
    run_push(tmp_path, workdir)
    holder = _gone_holder(workdir)
    held = run_locks(tmp_path, "new")
    run_push(tmp_path, workdir, held=held)
    held.raise_refusal()  # nothing refused
    now = json.loads((workdir / ".parbench-lock").read_text())
    assert now["token"] == held.holder.token and list(held.nodes) == ["n0"]
    assert f"took over the lock {workdir / '.parbench-lock'} of run {holder['run_id']}" in (
        capsys.readouterr().err
    )


def test_of_two_runs_judging_one_stale_lock_only_one_goes_on(tmp_path: Path) -> None:
    """Both see the lock's holder gone and ask the probe to take it over: the first does,
    the second then finds the first's lock (not the one it judged gone) and is refused, so
    no two pushes change one workdir (finding 6 of issue 16)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    _gone_holder(workdir)
    first, second = run_locks(tmp_path, "first"), run_locks(tmp_path, "second")
    second.holder = replace(second.holder, token="another-controller")  # not this process
    node = replace(first.inventory.nodes[0], workdir=str(workdir))

    def ask(line: str) -> str:
        return probe.answer_lock(str(workdir), line[len("lock ") :])

    first.take_workdir(node, ask)
    with pytest.raises(LockHeld, match="run first"):
        second.take_workdir(node, ask)
    assert json.loads((workdir / ".parbench-lock").read_text())["token"] == first.holder.token
    assert not [p for p in os.listdir(workdir) if ".aside-" in p]  # nothing left aside


def test_generated_data_is_made_on_the_node_once_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reference, "GENERATED_CACHE", tmp_path / "generated-cache")
    workdir = tmp_path / "work"
    made = workdir / "data" / "generated-1048577.bin"
    run_push(tmp_path, workdir, defaults="defaults: {data: 1048577}\n")
    assert hashlib.sha256(made.read_bytes()).hexdigest() == generate.sha256(1048577)
    first = made.stat().st_mtime_ns
    generating = []
    real_generate = push._generate
    monkeypatch.setattr(push, "_generate", lambda *args: generating.append(args))
    run_push(tmp_path, workdir, defaults="defaults: {data: 1048577}\n")
    assert made.stat().st_mtime_ns == first  # the stamp says it is there: not made again
    assert generating == []  # the probe told: no `worker generate` on the node at all
    monkeypatch.setattr(push, "_generate", real_generate)
    made.write_bytes(b"tampered")  # changed behind parbench's back: made again, right
    run_push(tmp_path, workdir, defaults="defaults: {data: 1048577}\n")
    assert hashlib.sha256(made.read_bytes()).hexdigest() == generate.sha256(1048577)
    monkeypatch.setattr(push, "generated_sha256", lambda size, cache=None: "0" * 64)
    made.unlink()
    with pytest.raises(StepError) as info:
        run_push(tmp_path, workdir, defaults="defaults: {data: 1048577}\n")
    assert str(info.value).startswith(
        "generated reference data/generated-1048577.bin: parbench generate: "
        "data/generated-1048577.bin: generated 1048577 bytes have sha256 "
    )
    assert "the controller expects 000000000000..." in str(info.value)
    assert not made.exists()


def test_a_node_whose_agent_cannot_start_is_still_pushed_and_ready_without_one(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "work"
    run_push(tmp_path, workdir)
    python = workdir / "venv" / "bin" / "python"
    python.unlink()
    python.write_text("not a program\n")  # the runtime's stamp still says it is current
    agents = Agents()
    info = run_push(tmp_path, workdir, agents=agents)
    assert (info.uploaded, info.provisioned) == (0, False)
    node = load(tmp_path / "inventory.yaml").nodes[0]
    assert agents.ask(replace(node, workdir=str(workdir)), "lock {}") is None  # no agent


@pytest.mark.parametrize(
    ("interpreter", "silent"),
    [
        ("exec sleep 10", "report its facts"),
        # the real probe, its input ended: facts said, then no clock answered
        (f'{sys.executable} "$@" </dev/null | head -n 1\nexec sleep 10', "answer the clock"),
    ],
)
def test_a_probe_that_stops_answering_is_named_not_taken_for_an_unreachable_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interpreter: str, silent: str
) -> None:
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\n{interpreter}\n")
    python.chmod(0o755)
    sessions: list[LocalSession] = []

    def stalling(conn: object, command: str) -> LocalSession:
        sessions.append(LocalSession(command))
        sessions[-1].timeout = 0.3
        return sessions[-1]

    monkeypatch.setattr(nodeprobe, "open_session", stalling)
    (tmp_path / "inventory.yaml").write_text("nodes:\n  - {id: n0, host: localhost}\n")
    node = replace(load(tmp_path / "inventory.yaml").nodes[0], python=str(python))
    node = replace(node, workdir=str(tmp_path / "work"))
    try:
        with pytest.raises(StepError, match=f"^the probe did not {silent} within 0.3 s$"):
            nodeprobe.probe_node(cast(push.Connection, None), node, [])
    finally:
        for session in sessions:
            session.proc.kill()
            session.proc.wait()


def test_refuses_a_workdir_it_did_not_make(tmp_path: Path) -> None:
    workdir = tmp_path / "mine"
    (workdir / "venv").mkdir(parents=True)
    (workdir / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (workdir / "worker").mkdir()
    (workdir / "worker" / "mine.py").write_text("print('the user's')\n")
    before = tree(workdir)
    with pytest.raises(StepError) as info:
        run_push(tmp_path, workdir)
    assert str(info.value) == (
        f"workdir {workdir} is not empty and was not made by parbench (no .parbench-workdir); "
        "choose an empty or new directory"
    )
    assert tree(workdir) == before


def test_refuses_a_file_as_workdir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x\n")
    with pytest.raises(StepError, match=f"workdir {tmp_path / 'file'} is not a directory"):
        run_push(tmp_path, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x\n"


@pytest.mark.parametrize("exists", [False, True])
def test_claims_a_new_or_empty_workdir(tmp_path: Path, exists: bool) -> None:
    workdir = tmp_path / "work"
    if exists:
        workdir.mkdir()
    first = run_push(tmp_path, workdir)
    assert (workdir / ".parbench-workdir").is_file()
    assert first.provisioned and first.uploaded > 0
    again = run_push(tmp_path, workdir)
    assert (again.uploaded, again.provisioned) == (0, False)


def test_takes_over_its_own_workdir_made_before_the_marker(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    (workdir / "venv").mkdir(parents=True)
    (workdir / "venv" / ".parbench-runtime").write_text("0123456789abcdef\n")
    (workdir / "worker").mkdir()
    (workdir / "worker" / "gone.py").write_text("# removed from the package since\n")
    info = run_push(tmp_path, workdir)
    assert info.provisioned
    assert (workdir / ".parbench-workdir").is_file()
    assert not (workdir / "worker" / "gone.py").exists()


def test_the_node_keeps_only_the_current_wheels(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    run_push(tmp_path, workdir, (ALLUXIO_OLD, REQUESTS))
    (workdir / "wheels" / "notes.txt").write_text("not a wheel: stays\n")
    shutil.rmtree(tmp_path / "cache")
    info = run_push(tmp_path, workdir, (ALLUXIO, REQUESTS))
    assert info.provisioned
    assert sorted(p.name for p in (workdir / "wheels").iterdir()) == [
        ALLUXIO,
        "notes.txt",
        REQUESTS,
    ]
    code = "import alluxio; print(alluxio.VERSION)"
    python = workdir / "venv" / "bin" / "python"
    done = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout == "0.1.4\n"


@pytest.mark.parametrize(
    ("layout", "refused"),
    [
        ({}, False),  # empty
        ({".parbench-workdir": "", "venv/x": "", "own.txt": ""}, False),
        ({"venv/.parbench-runtime": "abc\n", "notes.txt": ""}, False),
        ({"notes.txt": ""}, True),
        ({"venv/pyvenv.cfg": ""}, True),
        ({".parbench-workdir/x": ""}, True),  # the marker must be a file
    ],
)
def test_probe_refusal(tmp_path: Path, layout: dict[str, str], refused: bool) -> None:
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert (probe.refusal(str(tmp_path)) is not None) == refused
    assert probe.refusal(str(tmp_path / "new")) is None


@pytest.mark.parametrize(
    ("content", "age", "message"),
    [
        ("", 1, "the lock file is empty, written 1 s ago: a run may be taking it right now"),
        ("{not json", 1000, "cannot be read"),
    ],
)
def test_a_lock_file_without_a_holder_through_the_probe_says_how_to_clear_it(
    tmp_path: Path, content: str, age: float, message: str
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    lock = workdir / ".parbench-lock"
    lock.write_text(content)
    os.utime(lock, (time.time() - age, time.time() - age))
    held = run_locks(tmp_path, "new")
    node = replace(held.inventory.nodes[0], workdir=str(workdir))
    with pytest.raises(Exception) as info:
        held.take_workdir(node, lambda line: probe.answer_lock(str(workdir), line[len("lock ") :]))
    text = str(info.value)
    assert message in text and f"rm -f -- {lock}" in text and "\n" not in text
    assert lock.read_text() == content  # the probe removes no lock


def test_an_empty_lock_file_a_crash_left_is_cleared_before_the_push(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    lock = workdir / ".parbench-lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 60, time.time() - 60))
    held = run_locks(tmp_path, "new")
    node = replace(held.inventory.nodes[0], workdir=str(workdir))
    held.take_workdir(node, lambda line: probe.answer_lock(str(workdir), line[len("lock ") :]))
    assert not held.refusals and list(held.nodes) == ["n0"]
    assert json.loads(lock.read_text())["token"] == held.holder.token


def _package_files(package: Path) -> dict[str, bytes]:
    """Every module below ``package`` (a subpackage's too) by its path there, with its bytes."""
    return {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*.py")}


def test_a_subpackage_of_the_worker_is_pushed_and_its_removed_modules_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker as pushed has its subpackages (worker/protocol/...): their folders made,
    their modules copied and compared by sha256 like the others, and a module removed from
    one since the last push deleted on the node."""
    source = tmp_path / "src" / "worker"
    shutil.copytree(push.WORKER, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    for name in ("sub/__init__.py", "sub/part.py", "sub/deeper/__init__.py"):
        (source / name).write_text(f"# {name}\n")
    monkeypatch.setattr(push, "WORKER", source)
    workdir = tmp_path / "work"
    run_push(tmp_path, workdir)
    assert _package_files(workdir / "worker") == _package_files(source)
    assert run_push(tmp_path, workdir).uploaded == 0  # digested: nothing stale
    (source / "sub" / "part.py").unlink()
    (source / "sub" / "deeper" / "__init__.py").write_text("# changed\n")
    assert run_push(tmp_path, workdir).uploaded == 1
    assert _package_files(workdir / "worker") == _package_files(source)


def test_every_module_of_the_worker_package_is_pushed_with_its_digest() -> None:
    """worker/protocol/ (the contract, a package) included: push's list is every module
    below worker/, each with its sha256."""
    arts = push.artifacts(cast(push.Inventory, None), [], data=False)
    pushed = {a.remote: a.sha256 for a in arts}
    expected = {
        f"worker/{name}": hashlib.sha256(text).hexdigest()
        for name, text in _package_files(push.WORKER).items()
    }
    assert "worker/protocol/__init__.py" in expected
    assert pushed == expected
