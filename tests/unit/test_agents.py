"""The node agent: the probe's session handed over to ``python -m worker agent``, which
answers lock requests on that same session; and the controller's side of it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from controller.agents import Agents
from controller.inventory import load
from controller.nodeprobe import PROBE, clock_offset
from worker.lock import LOCK_NAME
from worker.protocol import AGENT_READY, LOCK_REPLY, Holder, LockRequest, ProbeFacts

from .test_push_node import LocalSession

REPO = Path(__file__).resolve().parents[2]
ME = Holder("r1", "t1", "ctl", 100, "me", 1000.0, 2000.0)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A workdir whose venv's python is this one and whose worker is this repo's."""
    work = tmp_path / "work"
    (work / "venv" / "bin").mkdir(parents=True)
    (work / ".parbench-workdir").touch()
    (work / "venv" / "bin" / "python").symlink_to(sys.executable)
    (work / "worker").symlink_to(REPO / "worker")
    return work


@pytest.fixture
def node(tmp_path: Path, workdir: Path):
    (tmp_path / "inventory.yaml").write_text("nodes:\n  - {id: n0, host: localhost}\n")
    return load(tmp_path / "inventory.yaml").nodes[0]


def _probed(workdir: Path) -> LocalSession:
    """The probe's session as push leaves it: facts read, clock measured."""
    session = LocalSession(f"exec {sys.executable} -c {shlex.quote(PROBE.read_text())} {workdir}")
    assert ProbeFacts.from_json(session.readline()).workdir_id is not None
    clock_offset(session)
    return session


def test_the_probe_becomes_the_agent_and_answers_lock_requests_on_its_session(
    workdir: Path, node
) -> None:
    session = _probed(workdir)
    agents = Agents()
    assert agents.hand_over(node, session)
    request = LockRequest("acquire", ME, str(workdir)).to_json()
    answer = agents.ask(node, f"lock {request}")
    assert answer is not None and answer.startswith(LOCK_REPLY + " ")
    assert json.loads(answer.split(" ", 1)[1])["workdir"]["held"]
    assert (workdir / LOCK_NAME).exists()
    release = LockRequest("release", ME, str(workdir)).to_json()
    assert agents.ask(node, f"lock {release}") is not None
    assert not (workdir / LOCK_NAME).exists()
    agents.close()  # its stdin ends: the agent exits
    assert session.proc.wait(timeout=10) == 0
    assert agents.ask(node, "lock {}") is None  # no agent now: the caller runs the worker


def test_a_probe_that_cannot_become_the_agent_is_finished_and_not_kept(workdir: Path, node) -> None:
    (workdir / "venv" / "bin" / "python").unlink()  # no runtime
    session = _probed(workdir)
    agents = Agents()
    assert not agents.hand_over(node, session)
    assert session.proc.returncode == 0
    assert agents.ask(node, "lock {}") is None


def test_an_agent_that_died_is_forgotten(workdir: Path, node) -> None:
    session = _probed(workdir)
    agents = Agents()
    assert agents.hand_over(node, session)
    session.proc.kill()
    session.proc.wait()
    assert agents.ask(node, "lock {}") is None  # gone: the caller runs the worker
    assert agents.ask(node, "lock {}") is None  # and it is not asked again


def test_the_agent_answers_every_line_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", "agent"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        input="lock not-json\nshrug\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0] == AGENT_READY and len(lines) == 3
    assert lines[1].startswith("parbench worker: lock:") and "no such request" in lines[2]
