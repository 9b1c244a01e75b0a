"""The node agent: the probe's session handed over to ``python -m worker agent``, which
answers lock requests on that same session; and the controller's side of it."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from invoke.watchers import StreamWatcher

from parbench.controller.nodes.agents import Agents
from parbench.controller.nodes.nodeprobe import PROBE, SESSION_TIMEOUT, clock_offset
from parbench.controller.nodes.remote import StepError
from parbench.controller.run.inventory import load
from parbench.worker.__main__ import build_parser, request_from_args
from parbench.worker.lock import LOCK_NAME
from parbench.worker.protocol import (
    AGENT_READY,
    LOCK_REPLY,
    READY,
    STDERR,
    AgentClock,
    AgentClockAsk,
    ExitCode,
    Holder,
    LockRequest,
    PhaseRequest,
    ProbeFacts,
    decode_line,
    encode_line,
    told_records,
)

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
    (work / "worker").symlink_to(REPO / "parbench" / "worker")
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


def test_a_probe_that_cannot_become_the_agent_is_closed_and_not_kept(workdir: Path, node) -> None:
    (workdir / "venv" / "bin" / "python").unlink()  # no runtime
    session = _probed(workdir)
    agents = Agents()
    assert not agents.hand_over(node, session)
    assert session.proc.wait(timeout=10) == 0  # its input closed: the probe ends
    assert agents.ask(node, "lock {}") is None


def test_an_agent_that_died_is_forgotten(workdir: Path, node) -> None:
    session = _probed(workdir)
    agents = Agents()
    assert agents.hand_over(node, session)
    session.proc.kill()
    session.proc.wait()
    assert agents.ask(node, "lock {}") is None  # gone: the caller runs the worker
    assert agents.ask(node, "lock {}") is None  # and it is not asked again


def test_the_agent_answers_its_clock_and_the_offset_is_measured_over_it(
    workdir: Path, node
) -> None:
    session = _probed(workdir)
    agents = Agents()
    assert agents.hand_over(node, session)
    before = time.time()
    told = agents.ask(node, encode_line(AgentClockAsk()))
    assert told is not None
    said = decode_line(told)
    assert isinstance(said, AgentClock) and before <= said.at <= time.time()
    measured = agents.clock(node)  # one machine: no offset, within the round trip
    assert measured is not None and abs(measured[0]) <= measured[1] + 0.01
    agents.close()


def test_the_agent_answers_every_line_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", "agent"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "parbench")},
        input="lock not-json\nshrug\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0] == AGENT_READY and len(lines) == 3
    assert lines[1].startswith("parbench worker: lock:") and "no such request" in lines[2]


class Go(StreamWatcher):
    """Answers the ready line with a start ``ahead`` seconds later, as the start gate does."""

    def __init__(self, ahead: float = 0.2) -> None:
        super().__init__()
        self.ahead = ahead

    def submit(self, stream: str) -> list[str]:
        ready = stream.startswith(READY)
        return [f"go {time.time() + self.ahead:.6f}\n"] if ready else []


def _request(tmp_path: Path) -> PhaseRequest:
    ref = tmp_path / "ref.bin"
    ref.write_bytes(os.urandom(100_000))
    (tmp_path / "store").mkdir()
    argv = ["write", "--src", str(ref), "--dst", "/bench", "--node", "n0", "--nfile", "2"]
    argv += ["--out", str(tmp_path / "out" / "write.jsonl"), "--run-id", "t1"]
    argv += ["--backend", "posix", "--root", str(tmp_path / "store"), "--start-on-stdin"]
    return replace(request_from_args(build_parser().parse_args(argv)), controlled=True)


@pytest.fixture
def agents(workdir: Path, node):
    """This node's probe handed over to its agent, ended after the test."""
    agents = Agents()
    assert agents.hand_over(node, _probed(workdir))
    yield agents
    agents.close()


def test_a_phase_runs_through_the_agent_on_the_probe_s_session(
    tmp_path: Path, workdir: Path, node, agents: Agents
) -> None:
    request = _request(tmp_path)
    kept = workdir / "runs" / "t1" / "write.request.json"
    out, err = io.StringIO(), io.StringIO()
    done = agents.run(node, str(kept), request.to_json(), out, err, [Go()], None, 60)
    assert done is not None and done.exited == 0, (out.getvalue(), err.getvalue())
    assert PhaseRequest.from_json(kept.read_text()) == request  # kept where it was named
    told = told_records(done.stdout, "agent")
    assert sorted(r.client for r in told) == [0, 1] and all(r.ok for r in told)
    assert out.getvalue() == done.stdout and "parbench-ready n0" in done.stdout
    # the agent is still there for the next request
    again = agents.run(node, str(kept), request.to_json(), out, err, [Go()], None, 60)
    assert again is not None and again.exited == 0


def test_a_stop_on_the_controls_pipe_reaches_the_phase_and_its_stderr_comes_tagged(
    tmp_path: Path, node, agents: Agents
) -> None:
    request = _request(tmp_path)
    read, write = os.pipe()
    os.write(write, b"stop\n")  # before the start: nobody starts
    out, err = io.StringIO(), io.StringIO()
    with os.fdopen(read, "rb", buffering=0) as stdin:
        done = agents.run(
            node, str(tmp_path / "r.json"), request.to_json(), out, err, [], stdin, 60
        )
    os.close(write)
    assert done is not None and done.exited == int(ExitCode.INTERRUPTED), done
    assert "stopped" in done.stderr and done.stderr == err.getvalue()
    assert STDERR not in out.getvalue() + err.getvalue()


def test_no_agent_means_nothing_is_run(tmp_path: Path, node) -> None:
    out = io.StringIO()
    assert Agents().run(node, "x", "{}", out, out, [], None, 5) is None


def test_a_phase_past_its_timeout_is_given_up_without_waiting_for_the_node(
    tmp_path: Path, node, agents: Agents
) -> None:
    request = _request(tmp_path)  # waits for a go that never comes
    out = io.StringIO()
    began = time.monotonic()
    with pytest.raises(StepError, match=r"timed out after 1 s \(defaults.phase_timeout\)"):
        agents.run(node, str(tmp_path / "r.json"), request.to_json(), out, out, [], None, 1)
    assert time.monotonic() - began < 5
    assert "parbench-ready n0" in out.getvalue()
    assert agents.ask(node, "lock {}") is None  # forgotten: its input closed, it stops


def test_a_phase_silent_for_longer_than_the_session_timeout_is_not_taken_for_a_dead_agent(
    tmp_path: Path, workdir: Path, node
) -> None:
    session = _probed(workdir)
    agents = Agents()
    assert agents.hand_over(node, session)
    session.timeout = 0.3  # a lock's answer may take this long; a phase may be silent longer
    request = _request(tmp_path)
    out = io.StringIO()
    try:  # nothing is said between the ready line and the start a second later
        done = agents.run(
            node, str(tmp_path / "r.json"), request.to_json(), out, out, [Go(1.0)], None, 30
        )
    finally:
        agents.close()
    assert done is not None and done.exited == 0, out.getvalue()
    assert session.timeout == SESSION_TIMEOUT  # lock requests are bounded again after it
