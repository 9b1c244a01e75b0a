"""Run N clients as N OS processes and collect one ClientResult from each.

A client that raises still reports (its job turns exceptions into error records); a client
process that dies without reporting gets an error record made here from its identity.
Timed jobs call ``wait_for_start`` after their set-up: the common start (worker/start.py).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Dict, List, Optional, Sequence

from worker.results import ClientResult
from worker.start import NoStart, StartSignal
from worker.storage import describe_error

WaitForStart = Callable[[], None]


def no_wait() -> None:
    """``wait_for_start`` of a job run on its own: start at once."""


@dataclass(frozen=True)
class Identity:
    """The fields every record of one client shares."""

    run_id: str
    phase: str
    node: str
    client: int
    host: str  # this node's hostname
    backend: str
    path: str
    local_path: Optional[str] = None

    def record(self, **fields: Any) -> ClientResult:
        return ClientResult(
            run_id=self.run_id,
            phase=self.phase,
            node=self.node,
            client=self.client,
            host=self.host,
            backend=self.backend,
            path=self.path,
            local_path=self.local_path,
            **fields,
        )

    def error_text(self, cause: str) -> str:
        """An error message naming the host, the path and the cause."""
        return f"{self.host}: {self.path}: {cause}"

    def failure(self, cause: str, **fields: Any) -> ClientResult:
        return self.record(status="error", error=self.error_text(cause), **fields)


class Job:
    """One client's work: picklable, called in its own process, returns its record.

    A timed job calls ``wait_for_start()`` once set up, just before its timed IO."""

    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        raise NotImplementedError


def _client_main(job: Job, conn: Connection, signal: StartSignal) -> None:
    """Process entry: run the job and send its record as one JSON line."""
    try:
        result = job(signal.arrive)
    except BaseException as exc:  # a bug in the job: still report it
        result = job.identity.failure(f"client crashed: {describe_error(exc)}")
    conn.send(result.to_json())
    conn.close()


def _receive(conn: Connection) -> Optional[ClientResult]:
    try:
        return ClientResult.from_dict(json.loads(conn.recv()))
    except (EOFError, OSError):
        return None


def _gather_arrivals(
    signal: StartSignal, receivers: Sequence[Connection], deadline: Optional[float]
) -> None:
    """Wait until each client has arrived at the start or already finished (a failed
    set-up, a crash), or until ``deadline``."""
    arrived = 0
    while arrived + sum(conn.poll() for conn in receivers) < len(receivers):
        if deadline is not None and time.time() >= deadline:
            return
        if signal.take_arrival(timeout=0.05):
            arrived += 1


def run_clients(
    jobs: Sequence[Job],
    on_result: Callable[[ClientResult], None] = lambda result: None,
    deadline: Optional[float] = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    progress_every: float = 10.0,
    start: Callable[[], Optional[float]] = lambda: None,
) -> List[ClientResult]:
    """Start every job in its own process, call ``on_result`` as each finishes.

    Once every client is set up (or done), ``start()`` gives the common start on this
    node's clock (None: at once) and the clients are released together; if it raises
    NoStart, they give up instead, each with an error record. While clients
    run, ``on_progress(done, total)`` is called every ``progress_every`` seconds. At
    ``deadline`` (epoch seconds, this node's clock) clients still running are terminated
    and get an error record, so that the records of the others are not lost with them.
    Returns the records in the order of ``jobs``.
    """
    context = multiprocessing.get_context()
    signal = StartSignal(context)
    pending: Dict[Connection, int] = {}
    processes = []
    for index, job in enumerate(jobs):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_client_main,
            args=(job, sender, signal),
            name=f"parbench-client-{job.identity.client}",
        )
        process.start()
        sender.close()  # the child holds the only writer: EOF once it is gone
        processes.append(process)
        pending[receiver] = index
    _gather_arrivals(signal, list(pending), deadline)
    try:
        signal.release(start())
    except NoStart:
        signal.cancel()
    results: List[Optional[ClientResult]] = [None] * len(jobs)

    def finish(index: int, result: ClientResult) -> None:
        results[index] = result
        on_result(result)

    while pending:
        timeout = progress_every
        if deadline is not None:
            timeout = max(min(timeout, deadline - time.time()), 0.0)
        ready = wait(list(pending), timeout=timeout)
        for conn in ready:
            index = pending.pop(conn)
            result = _receive(conn)
            conn.close()
            if result is None:
                processes[index].join()
                code = processes[index].exitcode
                result = jobs[index].identity.failure(
                    f"client process died without reporting (exit code {code})"
                )
            finish(index, result)
        if ready or not pending:
            continue
        if deadline is not None and time.time() >= deadline:
            for conn, index in pending.items():
                processes[index].terminate()
                conn.close()
                finish(
                    index,
                    jobs[index].identity.failure(
                        "timed out: still running at the deadline, terminated "
                        "(a partial file may remain)"
                    ),
                )
            pending.clear()
        else:
            on_progress(len(jobs) - len(pending), len(jobs))
    for process in processes:
        process.join()
    return [result for result in results if result is not None]
