"""The worker on one node for one phase step: its request sent (in the command line, or by
sftp when long), ``python -m worker run`` through the node's agent or a session of its
own, its output streamed (progress to the live board), its records fetched from its
stdout or its file, checked to be the request's and given the node's clock offset: a
``NodeOutcome`` in memory (controller/run/outcomes.py). Nothing here touches the run
folder; the command layer saves the outcome.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from dataclasses import replace
from typing import IO, Any, Optional, Sequence

from fabric import Connection
from invoke.watchers import StreamWatcher

from parbench.worker.protocol import (
    RECORDED_EXITS,
    ExitCode,
    PhaseRequest,
    for_the_controller,
    told_records,
)
from parbench.worker.results import ClientResult, read_lines

from ..run.inventory import Node
from ..run.outcomes import NodeOutcome
from ..run.plan import NodePaths, worker_command
from . import stopping
from .fleet import current
from .nodeoutput import printable, tail
from .remote import LiveBoard, PrefixedStream, StepError

#: characters of a request sent in the worker's command line; a longer one goes by sftp
#: (one argument may hold 128 KiB on Linux)
INLINE_REQUEST = 64 * 1024


def run_worker(
    conn: Connection,
    node: Node,
    request: PhaseRequest,
    timeout: float,
    offset: float,
    watchers: Sequence[StreamWatcher] = (),
    controls: Optional[stopping.Controls] = None,
    board: Optional[LiveBoard] = None,
) -> NodeOutcome:
    """Send ``request`` to ``node``, run it there, stream its output (its progress to
    ``board``), fetch its records: what came back, and why the step failed if it did.

    The node's records file is removed first, so that only this invocation's records can
    be fetched; they are in the outcome (clock offset filled in) even when the step then
    fails. Raises (StepError, or what the connection raised) only when the worker's
    output never came back. ``controls`` holds the worker's stdin: a ``stop`` there
    stops its clients. The request must be saved (collectable) before this is called.
    """
    phase = request.phase
    remote_request = NodePaths(node.workdir).request(request.run_id, phase)
    assert request.out is not None
    text = request.to_json()
    out = PrefixedStream(node.id, board=board)
    err = PrefixedStream(node.id, board=board, error=True)
    began = time.monotonic()
    with (controls or stopping.Controls()).attach(node.id) as stdin:
        try:
            shown = f"(the node's agent) python -m worker run {remote_request}"
            agents = current().agents
            result: Any = agents.run(node, remote_request, text, out, err, watchers, stdin, timeout)
            if result is None:  # no agent there: a session of its own
                shown, result = _run_alone(
                    conn, node, request, remote_request, text, out, err, watchers, stdin, timeout
                )
        except Exception:
            lost(conn, node, request, time.monotonic() - began)
            raise
        finally:
            out.finish()
            err.finish()
    lines = result.stdout.splitlines(keepends=True)
    said = "".join(line for line in lines if not for_the_controller(line))
    outcome = NodeOutcome(
        node.id,
        request,
        log=f"$ {shown}\n{said}{result.stderr}exit code {result.exited}\n",
        clock_offset=offset,
    )
    try:
        lost(conn, node, request, time.monotonic() - began)
        try:
            found = told(result.stdout, node, request) or fetch_records(conn, node, request)
        except OSError as exc:
            raise StepError(
                f"the worker left no {phase} records ({exc}); it exited "
                f"{result.exited}: {tail(result.stderr or said)}"
            ) from exc
        records = checked(found, request, offset)
    except StepError as exc:
        return replace(outcome, failure=str(exc))
    except ValueError as exc:  # a damaged records file: as on_nodes would say it
        return replace(outcome, failure=f"{type(exc).__name__}: {printable(str(exc))}")
    outcome = replace(outcome, records=tuple(records), fetched=True)
    counted = f"{len(records)} of {request.records} records collected"
    if result.exited in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
        failure = f"{phase} stopped when the controller was interrupted; {counted}"
    elif result.exited not in RECORDED_EXITS:
        failure = f"worker exited {result.exited}; {counted}"
    elif len(records) != request.records:
        failure = f"worker left {counted}"
    else:
        return outcome
    return replace(outcome, failure=failure)


def _run_alone(
    conn: Connection,
    node: Node,
    request: PhaseRequest,
    remote_request: str,
    text: str,
    out: PrefixedStream,
    err: PrefixedStream,
    watchers: Sequence[StreamWatcher],
    stdin: IO[bytes],
    timeout: float,
) -> tuple[str, Any]:
    """``python -m worker run`` over a session of its own: the command as the log shows
    it, and Fabric's result."""
    assert request.out is not None
    inline: tuple[str, ...] = ("--json", text)  # in the command: no sftp session
    if len(text) > INLINE_REQUEST:
        send(conn, remote_request, text + "\n")
        inline = ()
    command = f"rm -f {shlex.quote(request.out)} && " + worker_command(
        node, "run", remote_request, *inline
    )
    result = conn.run(
        command,
        warn=True,
        out_stream=out,
        err_stream=err,
        watchers=list(watchers),
        timeout=timeout,
        in_stream=stdin,
    )
    return command if not inline else command.replace(shlex.quote(text), "REQUEST"), result


def lost(conn: Connection, node: Node, request: PhaseRequest, seconds: float) -> None:
    """StepError saying so when the connection to ``node`` is gone."""
    transport = conn.client.get_transport()
    if transport is None or not transport.is_active():
        raise StepError(
            f"connection to {node.id} lost {seconds:.1f} s into {request.phase}; 0 of "
            f"{request.records} records collected (the node keeps them: the next "
            f"command on the run, or fab report --collect --run {request.run_id}, fetches them)"
        )


def told(output: str, node: Node, request: PhaseRequest) -> list[ClientResult]:
    """The records the worker told on its stdout, when it told all of them (else none:
    they are fetched from its file)."""
    try:
        records = told_records(output, f"{node.id}: the worker's output")
    except ValueError:
        return []
    return records if len(records) == request.records else []


def fetch_records(conn: Connection, node: Node, request: PhaseRequest) -> list[ClientResult]:
    """The records ``request`` left in its file on ``node`` (OSError when there is none),
    fetched into a temporary file of the controller's."""
    assert request.out is not None
    fd, fetched = tempfile.mkstemp(prefix=".parbench-", suffix=".jsonl")
    os.close(fd)
    try:
        conn.get(request.out, fetched)
        with open(fetched) as stream:
            return list(read_lines(stream, f"{node.id}:{request.out}"))
    finally:
        os.unlink(fetched)


def checked(
    records: list[ClientResult], request: PhaseRequest, offset: float
) -> list[ClientResult]:
    """``request``'s records, checked to be its own (StepError), with the node's clock
    offset."""
    check_records(request, records)
    return [replace(record, clock_offset=offset) for record in records]


def send(conn: Connection, remote: str, text: str) -> None:
    """Put ``text`` at ``remote`` on the node, making its folder (one level) first."""
    sftp = conn.sftp()
    folder = remote.rsplit("/", 1)[0]
    try:
        sftp.stat(folder)
    except OSError:
        sftp.mkdir(folder, 0o700)
    with sftp.open(remote, "w") as stream:
        stream.write(text.encode())


def check_records(request: PhaseRequest, records: list[ClientResult]) -> None:
    """Every record is one of ``request``'s clients, once."""
    expected = {t.client for t in request.clients}
    seen: set[int] = set()
    ours = (request.run_id, request.node, request.phase, request.iteration)
    for r in records:
        mine = (r.run_id, r.node, r.phase, r.iteration) == ours
        if not mine or r.client not in expected or r.client in seen:
            raise StepError(
                f"records file {request.out} holds a record of run {r.run_id} node {r.node} "
                f"{r.phase} iteration {r.iteration} client {r.client}, not one of this "
                f"request's ({request.run_id} {request.node} {request.phase} iteration "
                f"{request.iteration} clients 0..{len(expected) - 1})"
            )
        seen.add(r.client)
