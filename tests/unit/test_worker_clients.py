"""The process runner: one process per client, records even from crashed clients."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from worker.clients import Identity, Job, run_clients, wait_until
from worker.results import ClientResult


def identity(cid: int) -> Identity:
    return Identity("r", "write", "n0", cid, "hostA", "posix", f"/p/n0/{cid}")


@dataclass(frozen=True)
class PidJob(Job):
    identity: Identity

    def __call__(self) -> ClientResult:
        return self.identity.record(checksum=str(os.getpid()))


@dataclass(frozen=True)
class RaisingJob(Job):
    identity: Identity

    def __call__(self) -> ClientResult:
        raise RuntimeError("bug in job")


@dataclass(frozen=True)
class DyingJob(Job):
    identity: Identity

    def __call__(self) -> ClientResult:
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

    def __call__(self) -> ClientResult:
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
