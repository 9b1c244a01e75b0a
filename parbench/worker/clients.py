"""Run N clients as N OS processes and collect one ClientResult from each.

A client that raises still reports (its job turns exceptions into error records); a client
process that dies without reporting gets an error record made here from its identity.
Timed jobs call ``wait_for_start`` after their set-up: the common start (worker/start.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Union

from . import progress
from . import stop as stopping
from .results import ClientResult, error_detail
from .start import NoStart, wait_until
from .storage import describe_error

#: blocks until the common start; returns it (epoch seconds, this node's clock), or None
#: when the start is "at once"
WaitForStart = Callable[[], Optional[float]]


def no_wait() -> Optional[float]:
    """``wait_for_start`` of a job run on its own: start at once."""
    return None


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
    iteration: int = 0
    warmup: bool = False

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
            iteration=self.iteration,
            warmup=self.warmup,
            **fields,
        )

    def draft(self, **fields: Any) -> Draft:
        """This client's record to fill in while its job runs (:class:`Draft`)."""
        return Draft(self.record(**fields))

    def error_text(self, cause: str) -> str:
        """An error message naming the host, the path and the cause."""
        return f"{self.host}: {self.path}: {cause}"

    def failure(self, cause: str, **fields: Any) -> ClientResult:
        return self.record(status="error", error=self.error_text(cause), **fields)


class Draft:
    """A client's record while its job fills it in: its fields read and set as a
    ClientResult's, :meth:`freeze` gives the (frozen) record once the job is done."""

    def __init__(self, record: ClientResult) -> None:
        object.__setattr__(
            self, "_fields", {f.name: getattr(record, f.name) for f in fields(record)}
        )

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._fields:
            raise AttributeError(f"a client record has no field {name!r}")
        self._fields[name] = value

    def freeze(self) -> ClientResult:
        return ClientResult(**self._fields)


class Job:
    """One client's work: picklable, called in its own process, returns its record.

    A timed job calls ``wait_for_start()`` once set up, just before its timed IO."""

    identity: Identity

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        raise NotImplementedError


#: what a client sends its worker once set up; the worker answers with a ``Start``
READY = "ready"


@dataclass(frozen=True)
class Start:
    """The worker's answer to a ready client: go at ``at`` (this node's clock, None: at
    once), or give up (``go`` false: there is no common start)."""

    go: bool
    at: Optional[float] = None


def _client_main(
    job: Job, conn: Connection, stop_code: Any, slots: Any = None, index: int = 0
) -> None:
    """Process entry: lead a process group of its own (so that :func:`stop_clients` also
    reaches what the job starts, such as an ``alluxio fs checksum`` JVM), run the job, then
    send its record as one JSON line.

    ``wait_for_start`` tells the worker this client is ready and blocks for its answer;
    the end of the pipe means the worker is gone. SIGTERM, blocked by the worker while it
    started this process, is let in once the client's own handler is in place; SIGINT is
    the worker's business; the client is stopped too when its worker dies. ``slots``
    (a :class:`progress.Tally`'s) is where it counts its bytes and files, at ``index``."""

    def wait_for_start() -> Optional[float]:
        conn.send(READY)
        try:
            start = conn.recv()
        except EOFError:
            raise NoStart("the worker went away before the common start") from None
        if not start.go:
            raise NoStart("no common start from the controller; not started")
        wait_until(start.at)
        return start.at

    if slots is not None:
        progress.adopt(slots, index)
    try:
        os.setpgrp()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopping.in_client(stop_code)
        stopping.with_its_worker()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        result = job(wait_for_start)
    except BaseException as exc:  # a bug in the job: still report it
        result = job.identity.failure(
            f"client crashed: {describe_error(exc)}", detail=error_detail(exc)
        )
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: a stop now must not lose it
    with suppress(OSError):  # the worker is gone: nobody to report to
        conn.send(result.to_json())
    conn.close()


#: seconds the clients stopped at the deadline get to exit before they are killed
STOP_GRACE = 2.0


def _signal_group(pid: int, signum: int) -> bool:
    """Send ``signum`` to the process group client ``pid`` leads; False if none is left."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_clients(processes: Iterable[Any], grace: float = STOP_GRACE) -> None:
    """Stop client processes and everything they started: SIGTERM to the process group
    of each, then SIGKILL to the groups with a process left after ``grace`` seconds."""
    left = list(processes)
    for process in left:
        if not _signal_group(process.pid, signal.SIGTERM):
            process.terminate()  # it had not made its group yet
    until = time.monotonic() + grace
    while left and time.monotonic() < until:
        time.sleep(0.05)
        # is_alive() reaps an exited client, so that only live processes keep a group
        left = [p for p in left if p.is_alive() or _signal_group(p.pid, 0)]
    for process in left:
        _signal_group(process.pid, signal.SIGKILL)
        process.kill()


def _tell(conn: Connection, start: Start) -> None:
    """Answer a client; one that has exited meanwhile reports by its end of file."""
    with suppress(OSError):
        conn.send(start)


def _receive(conn: Connection) -> Union[str, ClientResult, None]:
    """READY, a client's record, or None if it died without one."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return None
    return message if message == READY else ClientResult.from_dict(json.loads(message))


def _release(waiting: Iterable[Connection], start: Callable[[], Optional[float]]) -> Start:
    """Ask ``start()`` for the common start and send it to every waiting client; if there
    is none (NoStart) or asking fails, they give up. Returns what was sent."""
    answer = Start(go=False)
    try:
        answer = Start(go=True, at=start())
    except NoStart:
        pass
    finally:
        for conn in waiting:
            _tell(conn, answer)
    return answer


def run_clients(
    jobs: Sequence[Job],
    on_result: Callable[[ClientResult], None] = lambda result: None,
    deadline: Optional[float] = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    progress_every: float = 10.0,
    start: Callable[[], Optional[float]] = lambda: None,
    max_running: Optional[int] = None,
    stop: Optional[stopping.StopSignal] = None,
    tally: Optional[progress.Tally] = None,
) -> List[ClientResult]:
    """Start every job in its own process, call ``on_result`` as each finishes.

    Once every client begun is set up and waiting, ``start()`` gives the common start on
    this node's clock (None: at once) and they are released together; if it raises
    NoStart, they give up instead, each with an error record. Jobs that never wait
    (verify) just run. ``max_running`` bounds how many run at once (for untimed jobs: a
    timed one begun when a slot frees gets the start already given, and begins late).
    While clients run, ``on_progress(done, total)`` is called every ``progress_every``
    seconds; each client counts its bytes and files into ``tally`` when given. At
    ``deadline`` (epoch seconds, this node's clock) clients still running are stopped with
    whatever they started (:func:`stop_clients`) and get an error record, so that the
    records of the others are not lost with them; those not begun get one too.
    An exception (KeyboardInterrupt) stops the running clients the same way before it goes
    on. A ``stop`` request (the controller, a lost connection, a signal) stops them the
    same way, each record saying why. Returns the records in the order of ``jobs``.
    """
    context = multiprocessing.get_context()
    if stop is None:  # nobody else stops these clients: a signal of their own, closed after
        own = stopping.StopSignal(context)
        try:
            return run_clients(
                jobs,
                on_result,
                deadline,
                on_progress,
                progress_every,
                start,
                max_running,
                own,
                tally,
            )
        finally:
            own.close()
    pending: Dict[Connection, int] = {}
    processes: Dict[int, Any] = {}
    queued = list(range(len(jobs)))

    def launch() -> None:
        while queued and (max_running is None or len(pending) < max_running):
            index = queued.pop(0)
            job = jobs[index]
            conn, child = context.Pipe()
            name = f"parbench-client-{job.identity.client}"
            slots = None if tally is None else tally.slots
            process = context.Process(
                target=_client_main, args=(job, child, stop.code, slots, index), name=name
            )
            # a SIGTERM before the client's handler is in place waits for it
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            child.close()  # the child holds the only other end: EOF once it is gone
            processes[index] = process
            pending[conn] = index

    results: List[Optional[ClientResult]] = [None] * len(jobs)
    waiting: Set[Connection] = set()  # ready, not released yet
    answer: Optional[Start] = None  # the start, once given

    def finish(index: int, result: ClientResult) -> None:
        results[index] = result
        on_result(result)

    def receive(conn: Connection) -> None:
        """A client's message: ready (answered or held), or its record (or its death)."""
        message = _receive(conn)
        if message == READY:
            if answer is None and not stop.requested:
                waiting.add(conn)
            else:  # the start was given (late client), or there is none any more
                _tell(conn, answer or Start(go=False))
            return
        index = pending.pop(conn)
        waiting.discard(conn)
        conn.close()
        if not isinstance(message, ClientResult):
            processes[index].join()
            code = processes[index].exitcode
            message = jobs[index].identity.failure(
                f"client process died without reporting (exit code {code})"
            )
        finish(index, message)

    def halt(code: int) -> None:
        """Stop the clients still running (SIGTERM to each one's process group: they save
        what they can and report why), kill those that have not reported ``STOP_GRACE``
        seconds later, and record the clients not begun."""
        stop.request(code)
        why = "timed out: not begun by the deadline" if code == stopping.DEADLINE else None
        for index in queued:
            finish(index, jobs[index].identity.failure(why or f"{stop.reason}; not begun"))
        queued.clear()
        held = set(waiting)
        for conn in held:  # held at the barrier: no start any more, and they say so
            _tell(conn, Start(go=False))
        waiting.clear()
        for conn, index in pending.items():
            if conn in held:
                continue
            if not _signal_group(processes[index].pid, signal.SIGTERM):
                processes[index].terminate()  # it had not made its group yet
        until = time.monotonic() + STOP_GRACE
        while pending and time.monotonic() < until:
            for conn in wait(list(pending), timeout=max(until - time.monotonic(), 0.0)):
                receive(conn)
        stop_clients((processes[index] for index in pending.values()), grace=0.0)
        for conn in wait(list(pending), timeout=0):  # reported just in time
            receive(conn)
        for conn, index in pending.items():
            conn.close()
            path = jobs[index].identity.path
            finish(
                index,
                jobs[index].identity.failure(
                    f"{stop.reason}; killed after {STOP_GRACE:g} s without a record "
                    f"(a partial file may remain at {path})"
                ),
            )
        pending.clear()

    shown = time.monotonic()
    try:
        launch()
        while pending:
            # every client begun is waiting, and no more can begin (all begun, or no slot)
            if answer is None and waiting and len(waiting) == len(pending):
                answer = _release(waiting, start)
                waiting.clear()
            timeout = max(shown + progress_every - time.monotonic(), 0.0)
            if deadline is not None:
                timeout = max(min(timeout, deadline - time.time()), 0.0)
            ready = wait([*pending, stop.fd], timeout=timeout)
            if stop.fd in ready:
                halt(stop.requested)
                break
            for conn in ready:
                receive(conn)  # type: ignore[arg-type]
            launch()
            if not pending:
                break
            if deadline is not None and time.time() >= deadline:
                halt(stopping.DEADLINE)
            elif time.monotonic() >= shown + progress_every:
                shown = time.monotonic()
                on_progress(len(jobs) - len(pending) - len(queued), len(jobs))
    except BaseException:  # interrupted: no client (nor what it started) outlives this
        stop_clients(processes[index] for index in pending.values())
        raise
    for process in processes.values():
        process.join()
    return [result for result in results if result is not None]
