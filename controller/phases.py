"""The steps behind the fab tasks: push, write, read, verify, clean, report.

Each phase: push (only what changed) -> run the worker on every node at once -> fetch
each node's JSON lines into ``results/<run>/<node>/`` -> summarise -> print a table. A
node that fails is reported by name, host and cause; the others' results are kept.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Optional, Sequence, TypeVar

from fabric import Connection
from invoke.watchers import StreamWatcher

from worker.protocol import (
    RECORDED_EXITS,
    ExitCode,
    PhaseRequest,
    RequestError,
    WorkdirClean,
    for_the_controller,
)
from worker.results import ClientResult, read_lines, told_records, write_file

from . import sweep as sweeping
from .analysis import history, metastats, provenance, stats, validity
from .nodes import locks, stopping
from .nodes import push as pushing
from .nodes.agents import AGENTS
from .nodes.nodeoutput import printable, tail
from .nodes.remote import (
    STOP_GRACE,
    Outcome,
    PrefixedStream,
    StepError,
    address,
    on_nodes,
)
from .nodes.startgate import AUTO_UNKNOWN_TRIP, ReadyWatcher, StartGate, auto_margin
from .output import exports, report
from .output.progress import Board
from .run import sequences, session
from .run.inventory import Inventory, Node, Settings
from .run.plan import (
    NodePaths,
    PlanError,
    ReadPlan,
    new_run_id,
    node_request,
    phase_budget,
    worker_command,
)
from .run.reference import PushError
from .run.rounds import Rounds
from .run.run import Run
from .run.rundir import NodeFailure, ResultsError, RunDir

#: characters of a request sent in the worker's command line; a longer one goes by sftp
#: (one argument may hold 128 KiB on Linux)
INLINE_REQUEST = 64 * 1024

#: a phase run once, as the seed did
ONCE = Rounds()
Summary = TypeVar("Summary", stats.PhaseSummary, metastats.MetaSummary)


class BenchFailure(RuntimeError):
    """A phase finished with failures; already reported on screen. ``code`` to exit with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def failure_table(failures: Sequence[NodeFailure]) -> str:
    rows = [(f.node, f.host, f.step, printable(f.cause)) for f in failures]
    width = [max(len(r[i]) for r in [("node", "host", "step", "cause"), *rows]) for i in range(3)]
    lines = [f"{len(failures)} node(s) failed:"]
    for row in [("node", "host", "step", "cause"), *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:3], width)) + "  " + row[3])
    return "\n".join(lines)


def _failures(outcomes: Sequence[Outcome]) -> list[NodeFailure]:
    return [o.failure for o in outcomes if o.failure is not None]


def push(
    inventory: Inventory,
    run: Optional[Run] = None,
    data: bool = True,
    held: Optional[locks.RunLocks] = None,
) -> list[Node]:
    """Update every node (``data``: with the reference file, which must be the run's);
    return the nodes that are ready, having reported the others. Fails if none is. With
    ``held``, each node's workdir is locked before anything in it changes, and a node
    locked by another run refuses the whole run (LockHeld), its locks given back."""
    arts = pushing.artifacts(inventory, pushing.ensure_wheels(), data)
    if run is not None:
        pushing.check_reference(arts, run.reference.path, run.reference.sha256)
    outcomes = on_nodes(
        inventory,
        "push",
        lambda conn, node: pushing.push_node(conn, node, inventory, arts, data, AGENTS, held),
    )
    if held is not None:
        held.raise_refusal()
    ready = [o.node for o in outcomes if o.failure is None]
    for o in outcomes:
        if o.value is not None:
            info = o.value
            note = f"{info.uploaded} file(s) copied" if info.uploaded else "up to date"
            if info.provisioned:
                note += ", runtime installed"
            print(
                f"[{o.node.id}] {info.hostname} python {info.python}: {note}; "
                f"clock offset {info.clock_offset * 1000:+.1f} ms "
                f"(±{info.clock_error * 1000:.1f})"
            )
    twins = pushing.same_workdirs({o.node.id: o.value for o in outcomes if o.value is not None})
    if twins:
        a, b = twins[0]
        raise PushError(
            f"nodes {a} and {b} are one workdir on one machine ({inventory.node(a).workdir}): "
            "list a machine once, or give each entry a workdir of its own"
        )
    failures = _failures(outcomes)
    if run is not None:
        run.dir.update_doc(
            "hosts.json", {o.node.id: o.value.to_dict() for o in outcomes if o.value is not None}
        )
        _record_failures(run.dir, "push", failures)
    if failures:
        print(failure_table(failures), file=sys.stderr)
        if not ready:
            raise BenchFailure("no node could be prepared")
    return ready


def push_all(inventory: Inventory) -> None:
    """``fab push``: every node up to date, or BenchFailure naming how many are not; a
    node another run holds is left alone (LockHeld)."""
    held = locks.of_run(inventory, f"push-{new_run_id()}")
    try:
        ready = push(inventory, held=held)
    finally:
        held.release()
    if len(ready) < len(inventory.nodes):
        missing = len(inventory.nodes) - len(ready)
        raise BenchFailure(f"push: {missing} of {len(inventory.nodes)} node(s) not prepared")


def _offsets(run: RunDir) -> dict[str, float]:
    return {nid: info["clock_offset"] for nid, info in run.read_doc("hosts.json", {}).items()}


def start_margin(run: RunDir, settings: Settings, nodes: Sequence[Node]) -> float:
    """Seconds from the last node ready to the common start: ``start_delay``, or when it
    is ``auto``, from the round trips the push measured to ``nodes`` (an unknown one
    counts as ``AUTO_UNKNOWN_TRIP``)."""
    if settings.start_delay is not None:
        return settings.start_delay
    hosts = run.read_doc("hosts.json", {})
    trips = [2 * hosts[n.id]["clock_error"] if n.id in hosts else AUTO_UNKNOWN_TRIP for n in nodes]
    return auto_margin(trips)


def run_worker(
    conn: Connection,
    node: Node,
    run: RunDir,
    request: PhaseRequest,
    timeout: float,
    offset: float,
    watchers: Sequence[StreamWatcher] = (),
    controls: Optional[stopping.Controls] = None,
    board: Optional[Board] = None,
) -> list[ClientResult]:
    """Send ``request`` to ``node``, run it there, stream its output (its progress to
    ``board``), fetch its records.

    The node's records file is removed first, so that only this invocation's records can
    be fetched; they are kept (clock offset filled in) even when the step then fails.
    ``controls`` holds the worker's stdin: a ``stop`` there stops its clients.
    """
    phase = request.phase
    remote_request = NodePaths(node.workdir).request(request.run_id, phase)
    assert request.out is not None
    text = request.to_json()
    run.node_file(node.id, f"{phase}.request.json").write_text(text + "\n")  # sent: collectable
    out = PrefixedStream(node.id, board=board)
    err = PrefixedStream(node.id, sys.stderr, board=board)
    began = time.monotonic()
    with (controls or stopping.Controls()).attach(node.id) as stdin:
        try:
            shown = f"(the node's agent) python -m worker run {remote_request}"
            result: Any = AGENTS.run(node, remote_request, text, out, err, watchers, stdin, timeout)
            if result is None:  # no agent there: a session of its own
                shown, result = _run_alone(
                    conn, node, request, remote_request, text, out, err, watchers, stdin, timeout
                )
        except Exception:
            _lost(conn, node, request, time.monotonic() - began)
            raise
        finally:
            out.finish()
            err.finish()
    lines = result.stdout.splitlines(keepends=True)
    said = "".join(line for line in lines if not for_the_controller(line))
    run.node_file(node.id, f"{phase}.log").write_text(
        f"$ {shown}\n{said}{result.stderr}exit code {result.exited}\n"
    )
    _lost(conn, node, request, time.monotonic() - began)
    try:
        records = _told(result.stdout, node, request) or fetch_records(conn, node, run, request)
        _keep(records, node, run, request, offset)
    except OSError as exc:
        raise StepError(
            f"the worker left no {phase} records ({exc}); it exited "
            f"{result.exited}: {tail(result.stderr or said)}"
        ) from exc
    counted = f"{len(records)} of {len(request.clients)} records collected"
    if result.exited in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
        raise StepError(f"{phase} stopped when the controller was interrupted; {counted}")
    if result.exited not in RECORDED_EXITS:
        raise StepError(f"worker exited {result.exited}; {counted}")
    if len(records) != len(request.clients):
        raise StepError(f"worker left {counted}")
    return records


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
        _send(conn, remote_request, text + "\n")
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


def _lost(conn: Connection, node: Node, request: PhaseRequest, seconds: float) -> None:
    """StepError saying so when the connection to ``node`` is gone."""
    transport = conn.client.get_transport()
    if transport is None or not transport.is_active():
        raise StepError(
            f"connection to {node.id} lost {seconds:.1f} s into {request.phase}; 0 of "
            f"{len(request.clients)} records collected (the node keeps them: the next "
            f"command on the run, or fab report --collect --run {request.run_id}, fetches them)"
        )


def _told(output: str, node: Node, request: PhaseRequest) -> list[ClientResult]:
    """The records the worker told on its stdout, when it told all of them (else none:
    they are fetched from its file)."""
    try:
        records = told_records(output, f"{node.id}: the worker's output")
    except ValueError:
        return []
    return records if len(records) == len(request.clients) else []


def fetch_records(conn: Connection, node: Node, run: RunDir, request: PhaseRequest) -> list:
    """The records ``request`` left in its file on ``node`` (OSError when there is none)."""
    assert request.out is not None
    fetched = run.node_file(node.id, f"{request.phase}.jsonl.remote")
    conn.get(request.out, str(fetched))
    try:
        with open(fetched) as stream:
            return list(read_lines(stream, f"{node.id}:{request.out}"))
    finally:
        fetched.unlink()


def _keep(
    records: list[ClientResult], node: Node, run: RunDir, request: PhaseRequest, offset: float
) -> None:
    """Check ``request``'s records and save them in the run folder next to those of the
    phase's other iterations, with the node's clock offset."""
    _check_records(request, records)
    for record in records:
        record.clock_offset = offset
    saved = run.node_file(node.id, f"{request.phase}.jsonl")
    others = [
        r for r in run.node_records(node.id, request.phase) if r.iteration != request.iteration
    ]
    write_file(others + records, str(saved))


def _send(conn: Connection, remote: str, text: str) -> None:
    """Put ``text`` at ``remote`` on the node, making its folder (one level) first."""
    sftp = conn.sftp()
    folder = remote.rsplit("/", 1)[0]
    try:
        sftp.stat(folder)
    except OSError:
        sftp.mkdir(folder, 0o700)
    with sftp.open(remote, "w") as stream:
        stream.write(text.encode())


def _check_records(request: PhaseRequest, records: list[ClientResult]) -> None:
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


def _record_failures(run: RunDir, phase: str, failures: list[NodeFailure]) -> None:
    run.update_doc("failures.json", {phase: [f.to_dict() for f in failures]})


def run_phases(
    run: Run,
    requests: dict[str, dict[str, PhaseRequest]],
    rounds: Rounds = ONCE,
    read_mode: Optional[str] = None,
) -> list[ClientResult]:
    """Push, run the phases of ``requests`` (phase -> node -> request) in turn on every
    ready node at once, gather, summarise. A timed phase runs as often as ``rounds``
    says, each iteration behind a common start of its own; the repeating ends early at
    the first iteration with a failure.

    Raises BenchFailure when a node failed or a record is not ok, after saving the rest.
    """
    phases = list(requests)
    inventory = run.inventory
    rounds.fits(phase_budget(inventory.settings))
    held = locks.of_run(inventory, run.run_id)  # the workdirs locked by push, before changes
    ready = [n for n in push(inventory, run, held=held) if all(n.id in requests[p] for p in phases)]
    locks.hold(inventory, run.run_id, ready)  # or LockHeld: another run is at work there
    collect(run, ready, skip=phases)  # records a node kept when an earlier command lost it
    for phase in phases:  # a node that fails now must not contribute an earlier attempt
        run.dir.forget(phase)
    timed = [p for p in phases if any(r.timed for r in requests[p].values())]
    if not timed:
        rounds = ONCE
    settings = inventory.settings
    margin = start_margin(run.dir, settings, ready)  # the same for every iteration
    if timed:
        auto = " (start_delay: auto)" if settings.start_delay is None else ""
        print(
            f"{'+'.join(phases)}: {sum(n.clients for n in ready)} clients on {len(ready)} "
            f"node(s) start together {margin * 1000:.0f} ms{auto} after the last is ready"
            + _rounds_note(rounds)
        )
    measured: list[float] = []
    verdict: Optional[str] = None
    iteration = 0
    while True:
        if iteration:
            locks.renew(run.run_id)  # a lease per iteration (LockFailed: lost meanwhile)
        warmup = rounds.next_is_warmup(iteration)
        done, failures, interrupted = _iteration(
            run, requests, ready, timed, rounds, iteration, warmup, margin
        )
        if interrupted is not None or failures or not all(r.ok for r in done) or not timed:
            break
        aggregate = stats.aggregate_of(done)
        if rounds.most > 1:
            print(report.iteration_line(timed[0], iteration, warmup, rounds, aggregate))
        if not warmup:
            measured.append(aggregate)
            verdict = rounds.verdict(measured)
        iteration += 1
        if verdict is not None:
            break
    if verdict is not None and verdict != "done":
        print(f"{'+'.join(phases)}: {verdict}")
    records: list[ClientResult] = []
    for phase in phases:
        _record_failures(run.dir, phase, failures)
        gathered = run.dir.records(phase)  # what the nodes left now, including failed steps
        summary = _judged(
            run,
            summary_of(phase, gathered).decided(verdict),
            rounds,
            read_mode,
            sum(len(r.clients) for r in requests[phase].values()),
            failures if phase in timed else None,
        )
        run.dir.update_doc("summary.json", {phase: summary.to_dict()})
        _keep_cluster(run.dir, gathered)
        if phase in timed:
            print(report.table(summary))
        records += gathered
    if failures:
        print(failure_table(failures), file=sys.stderr)
    if timed:
        run.dir.note_measured()  # latest: this run, once it has records of a timed phase
        trouble = history.remember(run.dir)
        if trouble:
            print(f"{'+'.join(phases)}: {trouble}", file=sys.stderr)
    exports.write(run.dir)
    bad = [r for r in records if not r.ok]
    if interrupted is not None:
        raise BenchFailure(
            f"{'+'.join(phases)} interrupted: {len(records) - len(bad)} record(s) ok, "
            f"{len(bad)} not; see {run.path}/",
            code=interrupted,
        )
    if failures or bad:
        raise BenchFailure(
            f"{'+'.join(phases)}: {len(bad)} record(s) not ok, "
            f"{len(failures)} node(s) failed; see {run.path}/"
        )
    return records


def _keep_cluster(run: RunDir, records: Sequence[ClientResult]) -> None:
    """cluster.json: the storage's version each node's proxy told (distinct ones joined
    as the run's ``version``), for the history and the report."""
    seen = {r.node: r.cluster for r in records if r.cluster}
    if seen:
        nodes = {**(run.read_doc("cluster.json") or {}).get("nodes", {}), **seen}
        version = ", ".join(sorted(set(nodes.values())))
        run.update_doc("cluster.json", {"nodes": nodes, "version": version})


def summary_of(
    phase: str, records: list[ClientResult]
) -> stats.PhaseSummary | metastats.MetaSummary:
    """The summary of a phase's records: ops/s for meta, throughput for the others."""
    if phase == "meta":
        return metastats.summarise_meta(records)
    return stats.summarise(records, phase)


def _judged(
    run: Run,
    summary: Summary,
    rounds: Rounds,
    read_mode: Optional[str],
    planned: int,
    failures: Optional[list[NodeFailure]],
) -> Summary:
    """``summary`` with its config, the run's labels and (with ``failures``: a timed
    phase) why its figures cannot be trusted."""
    s = run.inventory.settings
    config = validity.phase_config(run.inventory, run.reference, summary.phase, rounds, read_mode)
    invalid: tuple[str, ...] = ()
    if failures is not None:
        invalid = validity.judge(summary, planned, failures, s.max_start_skew, s.min_phase_seconds)
    return summary.judged(config, validity.config_hash(config), run.labels, invalid)


def _rounds_note(rounds: Rounds) -> str:
    """How often and how long, for the phase's first line; nothing for the seed's once."""
    notes = []
    if rounds.duration is not None:
        notes.append(f"each moves files one after another for {rounds.duration:g} s")
    if rounds.most > 1:
        warm = f"{rounds.warmup} warm-up iteration(s), then " if rounds.warmup else ""
        if rounds.until_stable is not None:
            how = (
                f"until the last {rounds.window} agree within {rounds.until_stable * 100:g} %"
                f" (at most {rounds.max_iterations})"
            )
        else:
            how = f"{rounds.iterations} measured iteration(s)"
        notes.append(warm + how)
    return "".join(f"; {note}" for note in notes)


def _iteration(
    run: Run,
    requests: dict[str, dict[str, PhaseRequest]],
    ready: list[Node],
    timed: list[str],
    rounds: Rounds,
    iteration: int,
    warmup: bool,
    margin: float,
) -> tuple[list[ClientResult], list[NodeFailure], Optional[int]]:
    """Run one iteration of the phases on the ``ready`` nodes, a timed one starting
    ``margin`` seconds after the last is ready: the records of the nodes that finished
    it, the node failures (and the nodes never prepared), and the exit code of an
    interruption (None: not interrupted)."""
    phases = list(requests)
    inventory, settings = run.inventory, run.inventory.settings
    offsets = _offsets(run.dir)
    gates = {
        phase: StartGate([n.id for n in ready], margin, settings.ready_timeout) for phase in timed
    }
    controls = stopping.Controls()
    board = Board()

    def step(conn: Connection, node: Node) -> list[ClientResult]:
        offset = offsets.get(node.id, 0.0)
        records: list[ClientResult] = []
        try:
            for phase in phases:
                if controls.stopped:
                    raise StepError(f"interrupted before {phase}")
                gate = gates.get(phase)
                watchers = [] if gate is None else [ReadyWatcher(gate, node.id, offset)]
                budget = phase_budget(settings)
                request = replace(
                    requests[phase][node.id],
                    deadline=time.time() + offset + budget,
                    iteration=iteration,
                    warmup=warmup,
                    duration=rounds.duration if phase in timed else None,
                )
                if iteration:  # the files there are this run's, from the iteration before
                    request = replace(request, on_existing="replace")
                records += run_worker(
                    conn, node, run.dir, request, settings.phase_timeout, offset, watchers,
                    controls, board,
                )  # fmt: skip
        finally:
            for gate in gates.values():  # a node that failed before it was ready
                gate.leave(node.id)  # holds no one up
        return records

    def cancel() -> None:
        board.close()  # the message must not land under the live block
        print(
            "interrupted: stopping the clients on every node and saving what finished "
            "(Ctrl-C again quits at once)",
            file=sys.stderr,
            flush=True,
        )
        for gate in gates.values():
            gate.cancel()
        controls.stop_all()

    interrupted: Optional[int] = None
    try:
        outcomes = on_nodes(
            inventory, "+".join(phases), step, ready, on_interrupt=cancel, together=True,
            grace=STOP_GRACE,
        )  # fmt: skip
    except stopping.Interrupted as stop:
        outcomes, interrupted = stop.outcomes, stop.code
    finally:
        board.close()
    for phase, gate in gates.items():
        if gate.late:
            print(
                f"{phase}: node(s) {', '.join(gate.late)} were not ready within "
                f"{settings.ready_timeout:g} s (defaults.ready_timeout) and started "
                "without waiting for the others",
                file=sys.stderr,
            )
    failures = _failures(outcomes) + [
        NodeFailure(n.id, address(n), "push", "not prepared (see above)")
        for n in inventory.nodes
        if n not in ready
    ]
    return [r for o in outcomes for r in o.value or []], failures, interrupted


def write(run: Run, rounds: Rounds = ONCE) -> None:
    s = run.inventory.settings
    if s.on_existing == "replace":
        print(
            f"write: files at {s.dst}/<node>/<client> left by an earlier run are replaced "
            "(defaults.on_existing: replace)"
        )
    records = run_phases(run, {"write": run.requests["write"]}, rounds)
    replaced = sum(r.replaced for r in records if r.iteration == 0)
    if replaced:
        print(f"write: replaced {replaced} file(s) left by an earlier run")


def read(run: Run, mode: str = "cross", src: Optional[str] = None, rounds: Rounds = ONCE) -> None:
    """Cross-node: the run's sealed read; same-file: every client reads ``src``."""
    if mode == "same":
        assert src is not None
        requests = run.same_file_requests(src)
        run.dir.update_doc("plan.json", {"read": {"mode": "same", "src": src}})
    else:
        if run.read_plan is None or "read" not in run.requests:
            raise PlanError(
                f"run {run.run_id} has one node: a cross-node read needs at least two "
                "nodes; to read back on the writing node use --mode same --src PATH"
            )
        # with a duration, the files each source's write left
        requests = sequences.read_requests(
            run.requests["read"], run.read_plan, run.dir.records("write")
        )
        run.dir.update_doc("plan.json", {"read": run.read_plan.to_dict()})
        print("\n".join(report.plan_lines(run.read_plan.pairing)))  # type: ignore[arg-type]
    run_phases(run, {"read": requests}, rounds, mode)


def verify(run: Run) -> None:
    """verify-write for the files the run's write made, verify-read for the copies its
    read made (only the phases that ran); a table naming every bad file, and the run that
    made each file found in place of the run's."""
    writes, reads = run.dir.records("write"), run.dir.records("read")
    done = run.dir.read_doc("plan.json", {}).get("read")
    read_plan = ReadPlan.from_dict(done) if done else None
    requests = {}  # every file the write left and every copy the read made, with their tags
    if writes:
        requests["verify-write"] = sequences.verify_write_requests(
            run.requests["verify-write"], writes
        )
    if reads:
        requests["verify-read"] = sequences.verify_read_requests(
            run.requests["verify-read"], read_plan, writes, reads
        )
    if not requests:
        raise PlanError(
            f"run {run.run_id} has no records of a write or a read: nothing it made to verify"
            " (run `fab write` first)"
        )
    for phase, ran in (("write", writes), ("read", reads)):
        if not ran:
            print(f"verify: no {phase} ran in run {run.run_id}: nothing of a {phase} to check")
    phases = list(requests)
    try:
        records = run_phases(run, requests)
    except BenchFailure:
        checked = [r for p in phases for r in run.dir.records(p)]
        print(report.verify_table(checked))
        print("\n".join(provenance.lines(run.dir.root, run.run_id, checked)))
        raise
    print(report.verify_table(records))
    print(f"verify: all {sum(r.files for r in records)} files match the reference")


def meta(run: Run) -> None:
    """The metadata phase: every client creates, stats, lists and deletes files."""
    if "meta" not in run.requests:
        raise PlanError(
            f"run {run.run_id} was sealed without a meta phase (an older parbench): start a"
            " new run with `fab meta` on its own"
        )
    s = run.inventory.settings
    print(
        f"meta: each client creates, stats, lists and deletes {s.meta_files} files of"
        f" {s.meta_size} bytes in {s.dst}/<node>/<client>.meta"
    )
    run_phases(run, {"meta": run.requests["meta"]})


def clean_request(
    inventory: Inventory,
    node: Node,
    data: bool = False,
    runs: bool = False,
    keep: Sequence[str] = (),
) -> PhaseRequest:
    """What ``node`` is asked to remove: ``{dst}/{node}`` and the read copies; with
    ``data`` the generated reference data in its workdir, with ``runs`` its run folders
    but those of the runs in ``keep``."""
    request = node_request(inventory, node, "clean", "clean", None)
    if not (data or runs):
        return request
    tidy = WorkdirClean(node.workdir, data, runs, tuple(keep))
    return replace(request, workdir_clean=tidy).check()


def clean(inventory: Inventory, data: bool = False, runs: bool = False) -> None:
    """Remove the files of ``dst`` in storage and the local copies, per node; ``data``:
    also the reference data generated in the workdirs, ``runs``: also the nodes' run
    folders (but of a run this process holds locks for)."""
    keep: tuple[str, ...] = ()

    def step(conn: Connection, node: Node) -> str:
        request = clean_request(inventory, node, data, runs, keep)
        paths = NodePaths(node.workdir)
        remote = paths.request("clean", "clean")
        _send(conn, remote, request.to_json() + "\n")
        return conn.run(worker_command(node, "run", remote), hide=True).stdout

    run_id = f"clean-{new_run_id()}"
    ready = push(inventory, data=False, held=locks.of_run(inventory, run_id))
    held = locks.hold(inventory, run_id, ready)
    keep = locks.held_runs()  # e.g. the run of a chained `fab write clean --runs`
    try:
        outcomes = on_nodes(inventory, "clean", step, ready)
    finally:
        held.release()
    for o in outcomes:
        if o.value:
            lines = o.value.strip().splitlines()
            print("\n".join(f"[{o.node.id}] {printable(line)}" for line in lines))
    failures = _failures(outcomes)
    if failures or len(ready) < len(inventory.nodes):
        if failures:
            print(failure_table(failures), file=sys.stderr)
        raise BenchFailure("clean failed on some nodes")


def collect(run: Run, nodes: Optional[Sequence[Node]] = None, skip: Sequence[str] = ()) -> None:
    """Fetch the records that nodes kept when the controller lost them: for every request
    sent (``nodes/<node>/<phase>.request.json``) with no records here yet, except the
    phases in ``skip`` (about to run again). The phases that gain records are summarised
    again."""
    missing: dict[str, list[PhaseRequest]] = {}
    for sent in sorted(run.path.glob("nodes/*/*.request.json")):
        phase = sent.name[: -len(".request.json")]
        if phase in skip:
            continue
        try:
            request = PhaseRequest.from_json(sent.read_text())
        except (OSError, RequestError) as exc:
            raise ResultsError(f"cannot read {sent}: {exc}") from None
        kept = run.dir.node_records(request.node, phase)
        if any(r.iteration == request.iteration for r in kept):
            continue
        missing.setdefault(request.node, []).append(request)
    targets = [n for n in (nodes or run.inventory.nodes) if n.id in missing]
    if not targets:
        return
    offsets = _offsets(run.dir)

    def fetch(conn: Connection, node: Node) -> list[str]:
        found = []
        for request in missing[node.id]:
            try:
                records = fetch_records(conn, node, run.dir, request)
                _keep(records, node, run.dir, request, offsets.get(node.id, 0.0))
            except OSError:
                found.append(f"{request.phase}: no records on the node (the worker saved none)")
                continue
            found.append(f"{request.phase}: {len(records)} record(s) collected")
        return found

    for o in on_nodes(run.inventory, "collect", fetch, targets):
        for line in o.value or [f"not collected: {o.failure and o.failure.cause}"]:
            print(f"[{o.node.id}] {line}")
    saved = run.dir.read_doc("summary.json", {})
    for phase in {r.phase for requests in missing.values() for r in requests}:
        again = summary_of(phase, run.dir.records(phase)).restored(saved.get(phase, {}))
        run.dir.update_doc("summary.json", {phase: again.to_dict()})
    run.dir.note_measured()


#: the phases a run's summaries are of
TIMED_KINDS = ("write", "read", "meta")


def summaries(
    run: RunDir, records: Optional[dict[str, list[ClientResult]]] = None
) -> dict[str, stats.PhaseSummary | metastats.MetaSummary]:
    """Each timed phase's summary, from the run's records (``records``, by phase, when
    they are read already) and the verdicts it kept."""
    saved = run.read_doc("summary.json", {})
    if records is None:
        records = {phase: run.records(phase) for phase in TIMED_KINDS}
    return {
        phase: summary_of(phase, found).restored(saved.get(phase, {}))
        for phase in TIMED_KINDS
        if (found := records.get(phase))
    }


def _failure_lines(run: RunDir) -> list[str]:
    return [
        f"{phase}: " + failure_table([NodeFailure(**f) for f in failed])
        for phase, failed in run.read_doc("failures.json", {}).items()
        if failed
    ]


def show(run: RunDir, damaged: Optional[list[str]] = None) -> None:
    """Print the tables of a run again, from its files. A damaged record is left out of
    them and named once they are printed (ResultsError; with ``damaged``, appended there
    instead, for :func:`left_out`)."""
    print(f"run {run.run_id} ({run.path})")
    told, damaged = damaged is None, [] if damaged is None else damaged
    records = {phase: run.records(phase, damaged) for phase in TIMED_KINDS}
    for summary in summaries(run, records).values():
        print(report.table(summary))
    checked = run.records("verify-write", damaged) + run.records("verify-read", damaged)
    if checked:
        print(report.verify_table(checked))
    for line in _failure_lines(run):
        print(line)
    if told:
        left_out(damaged)


def left_out(damaged: list[str]) -> None:
    """ResultsError naming the damaged records left out of a report (the first one's
    file:line and why), if any."""
    damaged = list(dict.fromkeys(damaged))  # the page and the tables read the same files
    if damaged:
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise ResultsError(f"{len(damaged)} damaged record(s) left out: {damaged[0]}{more}")


def html(run: RunDir, damaged: Optional[list[str]] = None) -> Path:
    """Write the run's HTML page (results/<run>/report.html) and return its path. A
    damaged record is left out of it and named once it is written (as :func:`show`)."""
    from .output import htmlreport  # matplotlib loads only when a page is asked for

    kinds = (*TIMED_KINDS, "verify-write", "verify-read")
    told, damaged = damaged is None, [] if damaged is None else damaged
    records = {phase: found for phase in kinds if (found := run.records(phase, damaged))}
    page = htmlreport.run_page(
        run,
        summaries(run, records),
        records,
        _failure_lines(run),
        history.location(run.path.parent),
    )
    written = run.write_text(htmlreport.NAME, page)
    if told:
        left_out(damaged)
    return written


class PointFailed(BenchFailure):
    """A sweep point's run failed; ``run_id`` names it."""

    def __init__(self, message: str, code: int, run_id: str) -> None:
        super().__init__(message, code)
        self.run_id = run_id


def sweep(base: Inventory, axes: dict[str, list[str]], steps: Sequence[str], root: Path) -> None:
    """``fab sweep``: each point of the matrix a run of ``steps`` (write, read, verify);
    a table of the points at the end; BenchFailure when a point failed."""
    found = sweeping.points(base, axes)
    unknown = [s for s in steps if s not in ("write", "read", "verify")]
    if unknown or "write" not in steps:
        raise PlanError(f"--steps: write, then any of read, verify; got {','.join(steps)}")
    sweep_id = sweeping.new_sweep_id()
    print(f"sweep {sweep_id}: {len(found)} point(s) of {', '.join(axes)}; each: {','.join(steps)}")

    def one(point: sweeping.Point, labels: dict[str, str]) -> tuple[str, dict]:
        settings = point.inventory.settings
        rounds = settings.rounds.fits(phase_budget(settings))  # the inventory's repeats
        run = session.start(point.inventory, root, labels)
        reads = "read" in steps and len(point.inventory.nodes) > 1
        try:
            write(run, rounds)
            if reads:
                read(run, rounds=rounds)
            if "verify" in steps:
                verify(run)
        except BenchFailure as exc:
            raise PointFailed(str(exc), exc.code, run.run_id) from None
        except Exception:  # refused (a lock held, a bad point) before any node was asked
            if not run.dir.sent():
                session.discard(run, None)  # no trace: no folder, latest unmoved
            raise
        return run.run_id, run.dir.read_doc("summary.json", {})

    outcomes = sweeping.run(sweep_id, found, one, root)
    print(report.sweep_table(sweep_id, list(axes), outcomes))
    from .output import htmlreport  # matplotlib loads only when a page is asked for

    page = root / "sweeps" / f"{sweep_id}.html"
    print(
        f"sweep {sweep_id}: {htmlreport.write_sweep(page, sweeping.document(sweep_id, outcomes))}"
    )
    failed = [o for o in outcomes if o.error]
    if failed:
        raise BenchFailure(f"sweep {sweep_id}: {len(failed)} of {len(outcomes)} point(s) failed")
