"""The phase loop behind the fab commands (their bodies: controller/commands.py).

Each phase: push (only what changed) -> run the worker on every node at once
(controller/nodes/runner.py, behind a common start) -> fetch each node's JSON lines into
``results/<run>/nodes/<node>/`` -> summarise -> print a table. A timed phase repeats as
its iteration plan says (controller/run/iterations.py). A node that fails is reported by
name, host and cause; the others' results are kept, and a node's records lost with its
connection are collected later.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional, Sequence, TypeVar

from fabric import Connection

from parbench.worker.protocol import PhaseRequest, RequestError
from parbench.worker.results import ClientResult

from .analysis import adequacy, history, metastats, stats, validity
from .nodes import locks, runner, stopping
from .nodes import push as pushing
from .nodes.fleet import current as fleet
from .nodes.fleet import on_nodes
from .nodes.nodeoutput import printable
from .nodes.remote import (
    STOP_GRACE,
    StepError,
    StepOutcome,
    address,
)
from .nodes.startgate import AUTO_UNKNOWN_TRIP, ReadyWatcher, StartGate, auto_margin
from .output import block, console, exports
from .output.progress import Board
from .run.inventory import Inventory, Node, Settings
from .run.iterations import IterationPlan
from .run.outcomes import Gathered, PhaseResult, save_nodes, save_phase, save_records
from .run.plan import phase_budget
from .run.reference import PushError
from .run.run import Run
from .run.rundir import NodeFailure, ResultsError, RunDir

#: a phase run once, as the seed did
ONCE = IterationPlan()
Summary = TypeVar("Summary", stats.PhaseSummary, metastats.MetaSummary)


class BenchFailure(RuntimeError):
    """A phase finished with failures; already reported on screen. ``code`` to exit with;
    ``result``: what the phases did (None: none ran, e.g. no node could be prepared)."""

    def __init__(self, message: str, code: int = 1, result: Optional[PhaseResult] = None) -> None:
        super().__init__(message)
        self.code = code
        self.result = result


def failure_table(failures: Sequence[NodeFailure]) -> str:
    rows = [(f.node, f.host, f.step, printable(f.cause)) for f in failures]
    width = [max(len(r[i]) for r in [("node", "host", "step", "cause"), *rows]) for i in range(3)]
    lines = [f"{len(failures)} node(s) failed:"]
    for row in [("node", "host", "step", "cause"), *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:3], width)) + "  " + row[3])
    return "\n".join(lines)


def failures_of(outcomes: Sequence[StepOutcome]) -> list[NodeFailure]:
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
    locked by another run refuses the whole run (LockHeld), its locks given back.

    A node this command pushed already (an earlier task of a chain, or of a sweep) is
    not probed again when this push would bring it nothing new: it is ready, with the
    facts measured then and its clock offset measured again (controller/nodes/fleet.py)."""
    arts = pushing.artifacts(inventory, pushing.ensure_wheels(), data)
    if run is not None:
        pushing.check_reference(arts, run.reference.path, run.reference.sha256)
    nodes = fleet()
    files = frozenset((a.remote, a.sha256) for a in arts)
    generated = pushing.generated_size(inventory, data)
    known = nodes.ready(inventory, files, generated)
    sizes = frozenset() if generated is None else nodes.sizes | {generated}  # a sweep's all

    def one(conn: Connection, node: Node) -> pushing.NodeInfo:
        info = pushing.push_node(conn, node, inventory, arts, data, nodes.agents, held, sizes)
        nodes.note_pushed(node, info, files, sizes)
        return info

    probed = [n for n in inventory.nodes if n.id not in known]
    pushed = {o.node.id: o for o in on_nodes(inventory, "push", one, probed)} if probed else {}
    outcomes = [pushed.get(n.id) or StepOutcome(n, value=known[n.id]) for n in inventory.nodes]
    if held is not None:
        held.raise_refusal()
    ready = [o.node for o in outcomes if o.failure is None]
    console.pushed({nid: o.value for nid, o in pushed.items() if o.value is not None})
    twins = pushing.same_workdirs({o.node.id: o.value for o in outcomes if o.value is not None})
    if twins:
        a, b = twins[0]
        raise PushError(
            f"nodes {a} and {b} are one workdir on one machine ({inventory.node(a).workdir}): "
            "list a machine once, or give each entry a workdir of its own"
        )
    failures = failures_of(outcomes)
    if run is not None:
        _save_hosts(run.dir, inventory.nodes)
        _record_failures(run.dir, "push", failures)
    if failures:
        console.failed(failure_table(failures), failures)
        if not ready:
            raise BenchFailure("no node could be prepared")
    return ready


def _save_hosts(run: RunDir, nodes: Sequence[Node]) -> None:
    """The run's hosts.json: what this command's pushes measured on its ``nodes`` (the
    fleet's facts), written whole when it differs from what this command wrote there
    last: once for a chained ``write read verify``, again only after a node was probed
    again. Never read back: the phase loop takes the facts from the fleet."""
    facts = {nid: info.to_dict() for nid, info in fleet().facts(nodes).items()}
    saved = fleet().saved
    if saved.get(run.path) != facts:
        run.write_doc("hosts.json", facts)
        saved[run.path] = facts


def _offsets(nodes: Sequence[Node]) -> dict[str, float]:
    """Node id -> its clock offset, as this command's push measured it."""
    return {nid: info.clock_offset for nid, info in fleet().facts(nodes).items()}


def start_margin(settings: Settings, nodes: Sequence[Node]) -> float:
    """Seconds from the last node ready to the common start: ``start_delay``, or when it
    is ``auto``, from the round trips the push measured to ``nodes`` (an unknown one
    counts as ``AUTO_UNKNOWN_TRIP``)."""
    if settings.start_delay is not None:
        return settings.start_delay
    facts = fleet().facts(nodes)
    trips = [2 * facts[n.id].clock_error if n.id in facts else AUTO_UNKNOWN_TRIP for n in nodes]
    return auto_margin(trips)


def _record_failures(run: RunDir, phase: str, failures: list[NodeFailure]) -> None:
    run.update_doc("failures.json", {phase: [f.to_dict() for f in failures]})


def run_phases(
    run: Run,
    requests: dict[str, dict[str, PhaseRequest]],
    rounds: IterationPlan = ONCE,
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
        run.forget(phase)
    timed = [p for p in phases if any(r.timed for r in requests[p].values())]
    if not timed:
        rounds = ONCE
    settings = inventory.settings
    margin = start_margin(settings, ready)  # the same for every iteration
    if timed:
        clients, auto = sum(n.clients for n in ready), settings.start_delay is None
        console.phase_start(phases, clients, len(ready), margin, auto, rounds)
    measured: list[float] = []
    verdict: Optional[str] = None
    failures: list[NodeFailure] = []
    iteration = 0
    gathered = Gathered(run.dir)  # the iterations' node outcomes, in memory
    try:
        while True:
            if iteration:
                locks.renew(run.run_id)  # a lease per iteration (LockFailed: lost meanwhile)
            warmup = rounds.next_is_warmup(iteration)
            done, failures, interrupted = _iteration(
                run, requests, ready, timed, rounds, iteration, warmup, margin, gathered
            )
            last = interrupted is not None or bool(failures) or not all(r.ok for r in done)
            if not (last or not timed):
                aggregate = stats.aggregate_of(done)
                if rounds.most > 1:
                    console.iteration(timed[0], iteration, warmup, rounds, aggregate)
                if not warmup:
                    measured.append(aggregate)
                    verdict = rounds.verdict(measured)
            last = last or not timed or verdict is not None
            # each iteration's records on disk before the next: a controller killed later
            # loses none of them (and `fab report --collect` fetches the one under way)
            # appended; closed before the last save: a node thread given up after an
            # interrupt that answers now is neither saved nor counted (the result is what
            # was saved)
            save_nodes(run.dir, PhaseResult(tuple(phases), gathered.unsaved(close=last)))
            if last:
                break
            iteration += 1
        result = PhaseResult(tuple(phases), gathered.close(), tuple(failures))
        for failed in {f.node for f in failures}:  # the next push probes it again
            fleet().unready(inventory.node(failed))
        if verdict is not None and verdict != "done":
            console.said(phases, verdict)
        records: list[ClientResult] = []
        summaries: list[stats.PhaseSummary | metastats.MetaSummary] = []
        for phase in phases:
            kept = result.records(phase)  # what the nodes left, including failed steps
            summaries.append(
                _judged(
                    run,
                    summary_of(phase, kept).decided(verdict),
                    rounds,
                    read_mode,
                    sum(r.records for r in requests[phase].values()),
                    failures if phase in timed else None,
                )
            )
            records += kept
    except BaseException:  # the records that came back are kept all the same
        _abandoned(run, PhaseResult(tuple(phases), gathered.unsaved(close=True), tuple(failures)))
        raise
    result = replace(result, summaries={s.phase: s.to_dict() for s in summaries})
    save_phase(run.dir, result)
    run.keep(result)  # the later tasks of this command take it from memory
    shown = [summary for summary in summaries if summary.phase in timed]
    console.phase_end(shown, failures, failure_table(failures))
    if timed:
        run.dir.note_measured()  # latest: this run, once it has records of a timed phase
        trouble = history.remember(run.dir)
        if trouble:
            console.said(phases, trouble, error=True)
    exports.write(run.dir)
    bad = [r for r in records if not r.ok]
    if interrupted is not None:
        raise BenchFailure(
            f"{'+'.join(phases)} interrupted: {len(records) - len(bad)} record(s) ok, "
            f"{len(bad)} not; see {run.path}/",
            code=interrupted,
            result=result,
        )
    if failures or bad:
        raise BenchFailure(
            f"{'+'.join(phases)}: {len(bad)} record(s) not ok, "
            f"{len(failures)} node(s) failed; see {run.path}/",
            result=result,
        )
    return records


def _abandoned(run: Run, result: PhaseResult) -> None:
    """Save what a phase loop stopped by an exception (a lease lost, a second Ctrl-C)
    did: its nodes' files, its phases' failures (those known), no summary (an earlier
    attempt's verdicts must not stand for these records), and the exports again. What
    cannot be saved now does not hide the exception that stopped the loop."""
    save_nodes(run.dir, result)
    try:
        run.dir.update_doc(
            "failures.json", {p: [f.to_dict() for f in result.failures] for p in result.phases}
        )
        run.dir.update_doc("summary.json", {}, drop=result.phases)
        exports.write(run.dir)
    except (OSError, ResultsError):
        pass


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
    rounds: IterationPlan,
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
        summary = adequacy.warned(summary, s.short_phase_seconds)
    return summary.judged(config, validity.config_hash(config), run.labels, invalid)


def _iteration(
    run: Run,
    requests: dict[str, dict[str, PhaseRequest]],
    ready: list[Node],
    timed: list[str],
    rounds: IterationPlan,
    iteration: int,
    warmup: bool,
    margin: float,
    gathered: Gathered,
) -> tuple[list[ClientResult], list[NodeFailure], Optional[int]]:
    """Run one iteration of the phases on the ``ready`` nodes, a timed one starting
    ``margin`` seconds after the last is ready: the records of the nodes that finished
    it, the node failures (and the nodes never prepared), and the exit code of an
    interruption (None: not interrupted)."""
    phases = list(requests)
    inventory, settings = run.inventory, run.inventory.settings
    offsets = _offsets(ready)
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
                if not gathered.sent(node.id, request):  # saved before sent: collectable
                    raise StepError(f"interrupted before {phase}")  # the phase is saved
                outcome = runner.run_worker(
                    conn, node, request, settings.phase_timeout, offset, watchers, controls,
                    board,
                )  # fmt: skip
                gathered.add(outcome)  # saved with the phase
                records += outcome.records
                if outcome.failure is not None:
                    raise StepError(outcome.failure)
        finally:
            for gate in gates.values():  # a node that failed before it was ready
                gate.leave(node.id)  # holds no one up
        return records

    def cancel() -> None:
        board.close()  # the message must not land under the live block
        console.interrupted()
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
            console.late(phase, gate.late, settings.ready_timeout)
    failures = failures_of(outcomes) + [
        NodeFailure(n.id, address(n), "push", block.NOT_PREPARED)
        for n in inventory.nodes
        if n not in ready
    ]
    return [r for o in outcomes for r in o.value or []], failures, interrupted


def collect(run: Run, nodes: Optional[Sequence[Node]] = None, skip: Sequence[str] = ()) -> None:
    """Fetch the records that nodes kept when the controller lost them: for every request
    sent (``nodes/<node>/<phase>.request.json``) with no records here yet, except the
    phases in ``skip`` (about to run again) and those this command ran with no node
    failing (it fetched every record). The phases that gain records are summarised
    again."""
    complete = {phase for phase, result in run.results.items() if not result.failures}
    missing: dict[str, list[PhaseRequest]] = {}
    for sent in sorted(run.path.glob("nodes/*/*.request.json")):
        phase = sent.name[: -len(".request.json")]
        if phase in skip or phase in complete:
            continue
        try:
            request = PhaseRequest.from_json(sent.read_text())
        except (OSError, RequestError) as exc:
            raise ResultsError(f"cannot read {sent}: {exc}") from None
        torn: list[str] = []  # its last save cut short: its iteration fetched again
        kept = run.dir.node_records(request.node, phase, torn)
        if not torn and any(r.iteration == request.iteration for r in kept):
            continue
        missing.setdefault(request.node, []).append(request)
    targets = [n for n in (nodes or run.inventory.nodes) if n.id in missing]
    if not targets:
        return
    offsets = _offsets(targets)
    if len(offsets) < len(targets):  # `fab report --collect`: not pushed by this command
        saved = run.dir.read_doc("hosts.json", {})  # what the push of an earlier one measured
        offsets = {n.id: saved[n.id]["clock_offset"] for n in targets if n.id in saved} | offsets

    def fetch(conn: Connection, node: Node) -> list[str]:
        found = []
        for request in missing[node.id]:
            try:
                fetched = runner.fetch_records(conn, node, request)
                records = runner.checked(fetched, request, offsets.get(node.id, 0.0))
                save_records(run.dir, node.id, request, records)
            except OSError:
                found.append(f"{request.phase}: no records on the node (the worker saved none)")
                continue
            found.append(f"{request.phase}: {len(records)} record(s) collected")
        return found

    for o in on_nodes(run.inventory, "collect", fetch, targets):
        console.node_lines(
            o.node.id, o.value or [f"not collected: {o.failure and o.failure.cause}"]
        )
    saved = run.dir.read_doc("summary.json", {})
    for phase in {r.phase for requests in missing.values() for r in requests}:
        again = summary_of(phase, run.dir.records(phase)).restored(saved.get(phase, {}))
        run.dir.update_doc("summary.json", {phase: again.to_dict()})
    run.dir.note_measured()
