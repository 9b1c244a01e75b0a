"""The order of the steps of a phase, against fake connections (no SSH, no testbed):
push, then the locks, then per node: send the request, run it, fetch its records; a
record of another node is refused; Ctrl-C stops every node and keeps what finished."""

from __future__ import annotations

import atexit
import io
import json
import shlex
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller import commands, phases
from parbench.controller.nodes import locks, remote, runner, stopping
from parbench.controller.phases import BenchFailure
from parbench.controller.run.inventory import load
from parbench.controller.run.outcomes import NodeOutcome
from parbench.controller.run.run import Run
from parbench.worker.protocol import ExitCode, PhaseRequest, Record, encode_line
from parbench.worker.results import ClientResult

INVENTORY = """
defaults: {clients: 2, dst: /bench, data: ref.txt}
nodes:
  - {id: n0, host: h0, workdir: /w/n0}
  - {id: n1, host: h1, workdir: /w/n1}
"""


class World:
    """The nodes' files and everything the controller did to them, in order."""

    def __init__(self, behaviour=None) -> None:
        self.files: dict[str, str] = {}
        self.log: list[tuple[str, ...]] = []
        self.lock = threading.Lock()
        self.behaviour = behaviour or (lambda node, request, conn_kwargs: None)
        self.tells = True  # the workers tell their records on stdout, as a real one does

    def note(self, *event: str) -> None:
        with self.lock:
            self.log.append(event)


class FakeSftp:
    def __init__(self, world: World, node: str) -> None:
        self.world, self.node = world, node

    def stat(self, path: str) -> None:
        return None

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        pass

    def open(self, path: str, mode: str = "r") -> io.BytesIO:
        world, node = self.world, self.node

        class Sink(io.BytesIO):
            def close(self) -> None:
                world.files[path] = self.getvalue().decode()
                world.note(node, "send", path)
                super().close()

        return Sink()


class FakeConnection:
    """Runs ``python -m worker run REQUEST`` as a worker would: ready, go, one record per
    client; ``behaviour`` may change what it does."""

    def __init__(self, world: World, node: str) -> None:
        self.world, self.node = world, node
        transport = SimpleNamespace(is_active=lambda: True)
        self.client = SimpleNamespace(get_transport=lambda: transport)

    def open(self) -> None:
        pass

    def sftp(self) -> FakeSftp:
        return FakeSftp(self.world, self.node)

    def run(self, command: str, **kwargs):
        self.world.note(self.node, "run", command)
        words = shlex.split(command)
        if "--json" in words:  # the request inline: the worker saves it where it is named
            self.world.files[words[-3]] = words[-1]
        request = PhaseRequest.from_json(self.world.files[words[words.index("run") + 1]])
        start = 0.0
        for watcher in kwargs.get("watchers", []):  # the barrier, across the node threads
            [answer] = watcher.submit(f"parbench-ready {self.node}\n")
            start = float(answer.split()[1]) if answer.startswith("go") else 0.0
        code = self.world.behaviour(self.node, request, kwargs) or ExitCode.OK
        stopped = code == ExitCode.INTERRUPTED
        records = [
            ClientResult(
                request.run_id, request.phase, self.world.files.get("as-node", request.node),
                t.client, self.node, "posix", t.path, status="error" if stopped else "ok",
                error="stopped: the controller was interrupted" if stopped else None,
                bytes=5, start=start, end=start + 1.0, iteration=request.iteration,
                warmup=request.warmup,
            )
            for t in request.clients
        ]  # fmt: skip
        self.world.files[request.out] = "".join(r.to_json() + "\n" for r in records)
        told = "".join(encode_line(Record(r)) + "\n" for r in records) if self.world.tells else ""
        return SimpleNamespace(stdout=told, stderr="", exited=int(code))

    def get(self, remote_path: str, local: str) -> None:
        self.world.note(self.node, "get", remote_path)
        Path(local).write_text(self.world.files[remote_path])

    def close(self) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(remote, "connect", lambda inventory, node: FakeConnection(world, node.id))

    def push(inventory, run=None, data=True, held=None):
        world.note("controller", "push")
        return list(inventory.nodes)

    monkeypatch.setattr(phases, "push", push)
    monkeypatch.setattr(locks, "hold", lambda inv, run_id, nodes: world.note("controller", "lock"))
    return world


@pytest.fixture
def run(tmp_path: Path) -> Run:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return Run.start(load(tmp_path / "inv.yaml"), tmp_path / "results")


def test_a_phase_pushes_locks_then_runs_with_the_request_and_takes_the_told_records(
    world, run
) -> None:
    commands.write(run)
    assert world.log[:2] == [("controller", "push"), ("controller", "lock")]
    for node in ("n0", "n1"):
        steps = [e for e in world.log if e[0] == node]
        assert [e[1] for e in steps] == ["run"]  # no sftp: request inline, records told
        sent = f"/w/{node}/runs/{run.run_id}/write.request.json"
        assert f"-m worker run {sent} --json " in steps[0][2]
        assert steps[0][2].startswith(f"rm -f /w/{node}/runs/{run.run_id}/write.jsonl && ")
        request = PhaseRequest.from_json(world.files[sent])
        assert request.deadline is not None  # the sealed request, with this run's deadline
        assert request.clients == run.requests["write"][node].clients
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["write"]["ok"] == 4 and summary["write"]["start_skew"] == 0.0


def test_a_long_request_goes_by_sftp_and_untold_records_are_fetched(
    world, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "INLINE_REQUEST", 10)
    world.tells = False  # e.g. a worker of an earlier version
    commands.write(run)
    for node in ("n0", "n1"):
        steps = [e for e in world.log if e[0] == node]
        assert [e[1] for e in steps] == ["send", "run", "get"]
        sent = f"/w/{node}/runs/{run.run_id}/write.request.json"
        assert steps[0][2] == sent and steps[1][2].endswith(f"-m worker run {sent}")
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["write"]["ok"] == 4
    log = (run.path / "nodes" / "n0" / "write.log").read_text()
    assert "--json" not in log


def test_records_of_another_node_are_refused_and_the_others_kept(world, run) -> None:
    world.files["as-node"] = "n9"  # every node's worker claims to be n9
    with pytest.raises(BenchFailure):
        commands.write(run)
    failures = json.loads((run.path / "failures.json").read_text())["write"]
    assert {f["node"] for f in failures} == {"n0", "n1"}
    assert all("holds a record of run" in f["cause"] and "node n9" in f["cause"] for f in failures)


def test_ctrl_c_stops_every_node_and_keeps_what_finished(world, run) -> None:
    def behaviour(node, request, kwargs):
        if node == "n0":  # Ctrl-C on the controller while the nodes are at work
            signal.raise_signal(signal.SIGINT)
        told = kwargs["in_stream"].read(5)  # the controller's stop reaches every node
        return ExitCode.INTERRUPTED if told == b"stop\n" else ExitCode.OK

    world.behaviour = behaviour
    with pytest.raises(BenchFailure) as info:
        commands.write(run)
    assert info.value.code == 130
    records = run.dir.records("write")
    assert len(records) == 4 and all("stopped" in (r.error or "") for r in records)
    failures = json.loads((run.path / "failures.json").read_text())["write"]
    assert all("stopped when the controller was interrupted" in f["cause"] for f in failures)


def test_a_second_ctrl_c_quits_at_once(world, run, monkeypatch: pytest.MonkeyPatch) -> None:
    quits: list[int] = []

    def quit_now(code: int) -> None:
        quits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(stopping, "quit_now", quit_now)

    def behaviour(node, request, kwargs):
        if node == "n0":  # Ctrl-C twice, the second while the nodes are still stopping
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.3)
            signal.raise_signal(signal.SIGINT)
        time.sleep(0.6)
        return ExitCode.INTERRUPTED

    world.behaviour = behaviour
    with pytest.raises(SystemExit):
        commands.write(run)
    assert quits == [130]


def test_one_workdir_of_one_machine_listed_twice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two entries that reach one machine under two names, with one workdir: push sees
    the same machine id and directory, and refuses before anything runs."""
    from parbench.controller.nodes import push as pushing
    from parbench.controller.nodes.push import NodeInfo
    from parbench.controller.run.reference import PushError

    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY.replace("workdir: /w/n1", "workdir: /w/n0"))
    inventory = load(tmp_path / "inv.yaml")
    monkeypatch.setattr(pushing, "ensure_wheels", lambda: [])
    monkeypatch.setattr(remote, "connect", lambda inv, node: FakeConnection(World(), node.id))
    same = NodeInfo("vm", "linux", "3.11", 0.0, 0.0, 0, False, "m-1", (64, 1234))
    monkeypatch.setattr(pushing, "push_node", lambda conn, node, inv, arts, *rest: same)
    with pytest.raises(PushError, match="nodes n0 and n1 are one workdir on one machine"):
        phases.push(inventory)


def test_a_workdir_locked_by_another_run_refuses_the_whole_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node's workdir is locked by push_node before it changes anything; one held by
    another run refuses the run once all are done, and what this one took is given back."""
    from parbench.controller.nodes import push as pushing
    from parbench.controller.nodes.push import NodeInfo

    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    inventory = load(tmp_path / "inv.yaml")
    held = locks.RunLocks(inventory, "mine")
    atexit.unregister(held.release)  # nothing to give back on these fake nodes
    monkeypatch.setattr(pushing, "ensure_wheels", lambda: [])
    monkeypatch.setattr(remote, "connect", lambda inv, node: FakeConnection(World(), node.id))
    other = {**vars(held.holder), "run_id": "other", "token": "theirs"}
    given_back: list[list[str]] = []
    monkeypatch.setattr(held, "release", lambda: given_back.append(sorted(held.nodes)))

    def push_node(conn, node, inv, arts, data, agents, locks_, *rest):  # type: ignore[no-untyped-def]
        assert locks_ is held
        place = {"path": f"{node.workdir}/.parbench-lock", "held": node.id == "n0"}
        if node.id != "n0":
            place["holder"] = other
        reply = json.dumps({"workdir": place, "dst": None})
        locks_.take_workdir(node, lambda line: f"parbench-lock {reply}\n")
        return NodeInfo("vm", "linux", "3.11", 0.0, 0.0, 0, False, node.id, (1, 1))

    monkeypatch.setattr(pushing, "push_node", push_node)
    with pytest.raises(locks.LockHeld, match=r"the workdir /w/n1/.parbench-lock \(on n1\) is lo"):
        phases.push(inventory, held=held)
    assert given_back == [["n0"]]


def test_iterations_send_each_its_number_and_keep_every_record(world, run) -> None:
    from parbench.controller.run.iterations import IterationPlan

    commands.write(run, IterationPlan(iterations=2, warmup=1))
    runs = [e for e in world.log if e[0] == "n0" and e[1] == "run"]
    assert len(runs) == 3  # one warm-up, two measured, each its own round
    records = run.dir.node_records("n0", "write")
    assert [(r.iteration, r.warmup) for r in records] == [
        (0, True), (0, True), (1, False), (1, False), (2, False), (2, False)
    ]  # fmt: skip
    last = PhaseRequest.from_json(world.files[f"/w/n0/runs/{run.run_id}/write.request.json"])
    assert (last.iteration, last.warmup, last.on_existing) == (2, False, "replace")
    summary = json.loads((run.path / "summary.json").read_text())["write"]
    assert [i["iteration"] for i in summary["iterations"]["measured"]] == [1, 2]
    assert summary["iterations"]["verdict"] == "done" and summary["ok"] == 8  # 2 x 4 records


def test_collecting_late_records_keeps_the_verdicts(world, run) -> None:
    commands.write(run)
    before = json.loads((run.path / "summary.json").read_text())["write"]
    assert len(before["config_hash"]) == 16
    (run.path / "nodes" / "n1" / "write.jsonl").unlink()  # as if the connection was lost
    phases.collect(run)
    after = json.loads((run.path / "summary.json").read_text())["write"]
    assert after["ok"] == 4 and after["config_hash"] == before["config_hash"]
    assert after["config"] == before["config"] and after["valid"] == before["valid"]


class Pooled:
    """A connection whose liveness the test decides."""

    def __init__(self) -> None:
        self.is_connected = False
        self.closed = False

    def open(self) -> None:
        self.is_connected = True

    def close(self) -> None:
        self.closed, self.is_connected = True, False


def test_a_node_is_connected_to_once_and_again_only_when_its_connection_died(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Pooled] = []

    def connect(inventory, node) -> Pooled:
        made.append(Pooled())
        return made[-1]

    monkeypatch.setattr(remote, "connect", connect)
    pool = remote.Connections()
    n0, n1 = run.inventory.nodes[:2]
    first = pool.get(run.inventory, n0)
    assert pool.get(run.inventory, n0) is first and len(made) == 1
    assert pool.get(run.inventory, n1) is not first and len(made) == 2
    first.is_connected = False  # the node's sshd dropped it
    again = pool.get(run.inventory, n0)
    assert again is not first and first.closed and again.is_connected and pool.made == 3
    pool.close()
    assert all(c.closed for c in made)


def test_the_locks_are_renewed_between_iterations(world, run, monkeypatch) -> None:
    from parbench.controller.run.iterations import IterationPlan

    monkeypatch.setattr(locks, "renew", lambda run_id: world.note("controller", "renew"))
    commands.write(run, IterationPlan(iterations=2, warmup=1))
    steps = [e[1] for e in world.log if e[1] in ("run", "renew") and e[0] in ("n0", "controller")]
    assert steps == ["run", "renew", "run", "renew", "run"]  # each iteration's lease anew


def test_a_node_step_is_an_outcome_in_memory_and_touches_no_file(world, run, capsys) -> None:
    world.behaviour = lambda node, request, kwargs: ExitCode.INTERRUPTED
    world.tells = False  # fetched from the node's file: not by way of the run folder
    before = sorted(run.path.rglob("*"))
    node, request = run.inventory.node("n0"), run.requests["write"]["n0"]
    outcome = runner.run_worker(FakeConnection(world, "n0"), node, request, 60.0, 0.25)
    assert sorted(run.path.rglob("*")) == before and capsys.readouterr() == ("", "")
    assert isinstance(outcome, NodeOutcome) and (outcome.node, outcome.fetched) == ("n0", True)
    assert [(r.client, r.clock_offset) for r in outcome.records] == [(0, 0.25), (1, 0.25)]
    assert outcome.failure == (
        "write stopped when the controller was interrupted; 2 of 2 records collected"
    )
    assert outcome.log is not None and outcome.log.startswith("$ rm -f ")
    assert outcome.log.endswith(f"exit code {int(ExitCode.INTERRUPTED)}\n")


def test_a_phase_is_kept_in_memory_and_saved_once(world, run, monkeypatch) -> None:
    """Two iterations: each node's records file and log written once per iteration (a
    controller killed in the second keeps the first's), each document once, and no
    records file read back (the summary is computed from the outcomes in memory)."""
    import collections
    import os

    from parbench.controller.run import outcomes, rundir
    from parbench.controller.run.iterations import IterationPlan

    written: collections.Counter[str] = collections.Counter()
    appended: collections.Counter[str] = collections.Counter()  # records: each iteration's
    read: list[str] = []
    os_replace, write_text, read_records = os.replace, Path.write_text, rundir._read_records

    def note(path) -> None:
        if Path(path).is_relative_to(run.path):
            written[str(Path(path).relative_to(run.path))] += 1

    def replacing(src, dst, *args, **kwargs):
        note(dst)
        return os_replace(src, dst, *args, **kwargs)

    def writing(self: Path, *args, **kwargs):
        note(self)
        return write_text(self, *args, **kwargs)

    def reading(path: Path, *args, **kwargs):
        read.append(str(path))
        return read_records(path, *args, **kwargs)

    def appending(path: Path, records) -> None:
        appended[str(path.relative_to(run.path))] += 1
        return append_records(path, records)

    append_records = outcomes.append_records
    monkeypatch.setattr(outcomes, "append_records", appending)
    monkeypatch.setattr(os, "replace", replacing)
    monkeypatch.setattr(Path, "write_text", writing)
    monkeypatch.setattr(rundir, "_read_records", reading)
    commands.write(run, IterationPlan(iterations=2))
    for node in ("n0", "n1"):
        assert appended[f"nodes/{node}/write.jsonl"] == 2
        assert written[f"nodes/{node}/write.log"] == 2
        assert written[f"nodes/{node}/write.jsonl"] == 0  # never rewritten
        assert written[f"nodes/{node}/write.request.json"] == 2  # each before it is sent
    assert written["summary.json"] == 1 and written["failures.json"] == 1
    assert read == []
    records = run.dir.node_records("n1", "write")
    assert [(r.iteration, r.client) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    summary = json.loads((run.path / "summary.json").read_text())["write"]
    assert summary["ok"] == 8 and [i["iteration"] for i in summary["iterations"]["measured"]] == [
        0, 1
    ]  # fmt: skip


def test_a_thread_left_behind_after_the_phase_is_saved_writes_nothing(run) -> None:
    from parbench.controller.run.outcomes import Gathered

    gathered = Gathered(run.dir)
    request = run.requests["write"]["n0"]
    assert gathered.sent("n0", request)
    gathered.add(NodeOutcome("n0", request, fetched=True, log="one\n"))
    assert [o.log for o in gathered.close()] == ["one\n"]
    before = sorted(run.path.rglob("*"))
    assert not gathered.sent("n0", request)  # the step stops: nothing is sent
    gathered.add(NodeOutcome("n0", request, fetched=True, log="late\n"))
    assert sorted(run.path.rglob("*")) == before and len(gathered.close()) == 1


def test_records_that_came_back_are_kept_when_the_phase_loop_fails(world, run, monkeypatch):
    from parbench.controller.run.iterations import IterationPlan

    def renew(run_id: str) -> None:
        raise locks.LockFailed("the lease was lost")

    monkeypatch.setattr(locks, "renew", renew)
    with pytest.raises(locks.LockFailed):
        commands.write(run, IterationPlan(iterations=2))
    for node in ("n0", "n1"):  # the first iteration's, saved though the second never ran
        assert [r.iteration for r in run.dir.node_records(node, "write")] == [0, 0]
        assert (run.path / "nodes" / node / "write.log").exists()


def test_each_iterations_records_are_on_disk_before_the_next_begins(world, run, monkeypatch):
    """A controller killed during iteration 2 has lost nothing of iteration 1."""
    from parbench.controller.nodes import locks
    from parbench.controller.run.iterations import IterationPlan

    on_disk: list = []

    def renew(run_id: str) -> None:  # called as the second iteration begins
        on_disk.append([(r.node, r.iteration) for r in run.dir.records("write")])

    monkeypatch.setattr(locks, "renew", renew)
    commands.write(run, IterationPlan(iterations=2))
    assert on_disk == [[("n0", 0), ("n0", 0), ("n1", 0), ("n1", 0)]]
