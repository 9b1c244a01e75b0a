"""The process runner: one process per client, records even from crashed clients."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from parbench.worker import progress
from parbench.worker.clients import Identity, Job, WaitForStart, no_wait, run_clients
from parbench.worker.meter import Meter
from parbench.worker.protocol import Measure
from parbench.worker.results import ClientResult
from parbench.worker.start import wait_until


def identity(cid: int) -> Identity:
    return Identity("r", "write", "n0", cid, "hostA", "posix", f"/p/n0/{cid}")


@dataclass(frozen=True)
class PidJob(Job):
    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        return self.identity.record(checksum=str(os.getpid()))


@dataclass(frozen=True)
class RaisingJob(Job):
    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        raise RuntimeError("bug in job")


@dataclass(frozen=True)
class DyingJob(Job):
    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        os._exit(7)


def test_each_client_runs_in_its_own_process_and_order_is_kept() -> None:
    seen = []
    results = run_clients([PidJob(identity(cid)) for cid in range(4)], on_result=seen.append)
    assert [r.client for r in results] == [0, 1, 2, 3]
    pids = {r.checksum for r in results}
    assert len(pids) == 4 and str(os.getpid()) not in pids
    assert sorted(r.client for r in seen) == [0, 1, 2, 3]


def test_raising_and_dead_clients_still_report() -> None:
    jobs = [PidJob(identity(0)), RaisingJob(identity(1)), DyingJob(identity(2))]
    results = run_clients(jobs)
    assert [r.status for r in results] == ["ok", "error", "error"]
    assert results[1].error == "hostA: /p/n0/1: client crashed: RuntimeError: bug in job"
    assert results[2].error.startswith("hostA: /p/n0/2: client process died")
    assert "exit code 7" in results[2].error


def test_wait_until() -> None:
    target = time.time() + 0.3
    wait_until(target)
    assert time.time() >= target
    before = time.time()
    wait_until(None)
    wait_until(before - 10)
    assert time.time() - before < 0.1


@dataclass(frozen=True)
class SlowJob(Job):
    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        wait_for_start()
        time.sleep(60)
        return self.identity.record()


def test_clients_past_the_deadline_are_terminated_and_the_others_kept() -> None:
    progress = []
    began = time.monotonic()
    results = run_clients(
        [PidJob(identity(0)), SlowJob(identity(1))],
        deadline=time.time() + 1.0,
        on_progress=lambda done, total: progress.append((done, total)),
        progress_every=0.3,
    )
    assert time.monotonic() - began < 10
    assert [r.status for r in results] == ["ok", "error"]
    assert "timed out: still running at the deadline" in results[1].error
    assert progress and progress[-1] == (1, 2)


@dataclass(frozen=True)
class SpawningJob(Job):
    """Starts a long ``sleep`` (as ``alluxio fs checksum`` starts a JVM), notes its pid in
    ``pid_file`` and waits for it."""

    identity: Identity
    pid_file: str

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        child = subprocess.Popen(["sleep", "60"])
        Path(self.pid_file + ".tmp").write_text(str(child.pid))
        os.replace(self.pid_file + ".tmp", self.pid_file)
        child.wait()
        return self.identity.record()


def runs(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def gone_soon(pid: int) -> bool:
    until = time.monotonic() + 5
    while runs(pid) and time.monotonic() < until:
        time.sleep(0.05)
    return not runs(pid)


def test_what_a_client_started_is_stopped_with_it_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    results = run_clients([SpawningJob(identity(0), str(pid_file))], deadline=time.time() + 1.0)
    assert "timed out: still running at the deadline" in results[0].error
    assert gone_soon(int(pid_file.read_text()))


def test_an_interrupted_worker_stops_its_clients_and_what_they_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def interrupt(done: int, total: int) -> None:
        if pid_file.exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_clients(
            [SpawningJob(identity(0), str(pid_file))], on_progress=interrupt, progress_every=0.1
        )
    assert gone_soon(int(pid_file.read_text()))


def test_a_client_stuck_in_its_set_up_is_terminated_at_the_deadline() -> None:
    began = time.monotonic()
    results = run_clients(
        [StaggeredJob(identity(0), 0.0), StaggeredJob(identity(1), 60.0)],
        deadline=time.time() + 1.0,
    )
    assert time.monotonic() - began < 10
    # released at the deadline, so the quick client is cut off too: nobody hangs
    assert [r.client for r in results] == [0, 1]
    assert "timed out: still running at the deadline" in results[1].error


@dataclass(frozen=True)
class StaggeredJob(Job):
    """Sets up for ``setup`` seconds, then waits for the common start and records it."""

    identity: Identity
    setup: float

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        time.sleep(self.setup)
        ready = time.time()
        wait_for_start()
        return self.identity.record(ready=ready, start=time.time())


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_clients_start_together_after_the_slowest_set_up(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the start method (forkserver is the default from Python 3.14 on)."""
    context = multiprocessing.get_context(method)
    monkeypatch.setattr(multiprocessing, "get_context", lambda: context)
    asked = []

    def start() -> float:
        asked.append(time.time())
        return time.time() + 0.2

    jobs = [StaggeredJob(identity(0), 0.0), StaggeredJob(identity(1), 1.0), RaisingJob(identity(2))]
    results = run_clients(jobs, start=start)
    assert [r.status for r in results] == ["ok", "ok", "error"]
    (asked_at,) = asked  # asked once, when every client was ready or done
    assert all(r.ready <= asked_at for r in results[:2])
    starts = [r.start for r in results[:2]]
    assert min(starts) >= asked_at + 0.2
    # the fast client waited out the slow one's second of set-up (compared by order, not
    # by duration: process start-up under load eats into any fixed margin)
    assert starts[0] >= results[1].ready > results[0].ready


def test_without_a_start_time_clients_go_once_all_are_ready() -> None:
    results = run_clients([StaggeredJob(identity(0), 0.0), StaggeredJob(identity(1), 0.5)])
    assert results[0].start >= results[1].ready


@dataclass(frozen=True)
class SpanJob(Job):
    """Records when it ran (start, end) and for how long: 0.3 s."""

    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        began = time.time()
        time.sleep(0.3)
        return self.identity.record(start=began, end=time.time())


def test_max_running_bounds_how_many_run_at_once_and_keeps_every_record() -> None:
    progress: list = []
    results = run_clients(
        [SpanJob(identity(cid)) for cid in range(5)],
        max_running=2,
        on_progress=lambda done, total: progress.append((done, total)),
        progress_every=0.2,
    )
    assert [r.client for r in results] == [0, 1, 2, 3, 4]
    edges = sorted([(r.start, 1) for r in results] + [(r.end, -1) for r in results])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2
    assert all(total == 5 and 0 <= done <= 5 for done, total in progress)


def test_jobs_not_begun_by_the_deadline_get_a_record_too() -> None:
    results = run_clients(
        [SlowJob(identity(0)), PidJob(identity(1))], max_running=1, deadline=time.time() + 2.0
    )
    assert [r.client for r in results] == [0, 1]
    assert "timed out: still running at the deadline" in results[0].error
    assert results[1].error.endswith("timed out: not begun by the deadline")


def test_a_timed_job_begun_after_the_start_was_given_starts_at_once() -> None:
    asked = []
    results = run_clients(
        [StaggeredJob(identity(cid), 0.0) for cid in range(3)],
        max_running=2,
        start=lambda: asked.append(1) or time.time() + 0.3,
    )
    assert asked == [1] and [r.status for r in results] == ["ok", "ok", "ok"]
    assert results[2].start >= results[0].start  # it got the same start, already past


@dataclass(frozen=True)
class CountingJob(Job):
    """Moves ``size`` bytes in two chunks and one whole file through a real Meter."""

    identity: Identity
    size: int

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        meter = Meter(Measure(latency=False, interval=0))
        began = meter.clock()
        meter.moved("write", began, self.size // 2)
        meter.moved("write", began, self.size - self.size // 2)
        meter.file_done(began)
        return self.identity.record(bytes=self.size)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_clients_count_bytes_and_files_into_the_shared_tally(method: str) -> None:
    context = multiprocessing.get_context(method)
    previous = multiprocessing.get_start_method()
    multiprocessing.set_start_method(method, force=True)
    try:
        tally = progress.Tally(context, 3)
        run_clients([CountingJob(identity(c), 1000 * (c + 1)) for c in range(3)], tally=tally)
    finally:
        multiprocessing.set_start_method(previous, force=True)
    assert tally.totals() == (6000, 3)
