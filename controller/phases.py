"""The steps behind the fab tasks: push, write, read, verify, clean, report.

Each phase: push (only what changed) -> run the worker on every node at once -> fetch
each node's JSON lines into ``results/<run>/<node>/`` -> summarise -> print a table. A
node that fails is reported by name, host and cause; the others' results are kept.
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import Optional, Sequence

from fabric import Connection
from invoke.watchers import StreamWatcher

from worker.results import ClientResult, read_lines, write_file

from . import push as pushing
from . import report, stats
from .inventory import Inventory, Node
from .plan import (
    REQUEST_TIMEOUT_SHARE,
    ReadPlan,
    node_paths,
    worker_args,
    worker_command,
    write_paths,
)
from .remote import NodeFailure, Outcome, PrefixedStream, StepError, address, on_nodes
from .rundir import RunDir
from .startgate import ReadyWatcher, StartGate

#: worker exit codes that still mean "records written": 0 all ok, 1 some not ok
WORKER_RECORDED = (0, 1)


class BenchFailure(RuntimeError):
    """A phase finished with failures; already reported on screen. ``code`` to exit with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def failure_table(failures: Sequence[NodeFailure]) -> str:
    rows = [(f.node, f.host, f.step, f.cause) for f in failures]
    width = [max(len(r[i]) for r in [("node", "host", "step", "cause"), *rows]) for i in range(3)]
    lines = [f"{len(failures)} node(s) failed:"]
    for row in [("node", "host", "step", "cause"), *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:3], width)) + "  " + row[3])
    return "\n".join(lines)


def _failures(outcomes: Sequence[Outcome]) -> list[NodeFailure]:
    return [o.failure for o in outcomes if o.failure is not None]


def push(inventory: Inventory, run: Optional[RunDir] = None, data: bool = True) -> list[Node]:
    """Update every node (``data``: with the reference file); return the nodes that are
    ready, having reported the others. Fails if none is ready."""
    arts = pushing.artifacts(inventory, pushing.ensure_wheels(), data)
    outcomes = on_nodes(
        inventory, "push", lambda conn, node: pushing.push_node(conn, node, inventory, arts)
    )
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
    failures = _failures(outcomes)
    if run is not None:
        infos = {o.node.id: o.value.to_dict() for o in outcomes if o.value is not None}
        run.update_json(
            "manifest.json",
            "nodes",
            {**run.read_json("manifest.json", {}).get("nodes", {}), **infos},
        )
        _record_failures(run, "push", failures)
    if failures:
        print(failure_table(failures), file=sys.stderr)
        if not ready:
            raise BenchFailure("no node could be prepared")
    return ready


def push_all(inventory: Inventory) -> None:
    """``fab push``: every node up to date, or BenchFailure naming how many are not."""
    ready = push(inventory)
    if len(ready) < len(inventory.nodes):
        missing = len(inventory.nodes) - len(ready)
        raise BenchFailure(f"push: {missing} of {len(inventory.nodes)} node(s) not prepared")


def _offsets(run: RunDir) -> dict[str, float]:
    return {
        nid: info["clock_offset"]
        for nid, info in run.read_json("manifest.json", {}).get("nodes", {}).items()
    }


def run_worker(
    conn: Connection,
    node: Node,
    inventory: Inventory,
    run: RunDir,
    phase: str,
    args: list[str],
    offset: float,
    watchers: Sequence[StreamWatcher] = (),
) -> list[ClientResult]:
    """Run ``python -m worker ARGS`` on ``node``, stream its output, fetch its records.

    The node's records file is removed first, so that only this invocation's records can
    be fetched; they are kept (clock offset filled in) even when the step then fails.
    """
    paths = node_paths(inventory, node)
    remote_out = paths.output(run.run_id, phase)
    command = f"rm -f {shlex.quote(remote_out)} && " + worker_command(node, paths, args)
    out, err = PrefixedStream(node.id), PrefixedStream(node.id, sys.stderr)
    try:
        result = conn.run(
            command,
            warn=True,
            out_stream=out,
            err_stream=err,
            watchers=list(watchers),
            timeout=inventory.settings.phase_timeout,
        )
    finally:
        out.finish()
        err.finish()
    run.node_file(node.id, f"{phase}.log").write_text(
        f"$ {command}\n{result.stdout}{result.stderr}exit code {result.exited}\n"
    )
    fetched = run.node_file(node.id, f"{phase}.jsonl.remote")
    try:
        conn.get(remote_out, str(fetched))
    except OSError as exc:
        output = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise StepError(
            f"the worker left no {phase} records ({exc}); it exited "
            f"{result.exited}: {' | '.join(output)}"
        ) from exc
    with open(fetched) as stream:
        records = list(read_lines(stream, f"{node.id}:{remote_out}"))
    fetched.unlink()
    for record in records:
        record.clock_offset = offset
    write_file(records, str(run.node_file(node.id, f"{phase}.jsonl")))
    if result.exited not in WORKER_RECORDED:
        raise StepError(f"worker exited {result.exited} after writing {len(records)} records")
    if len(records) != node.clients:
        raise StepError(f"worker left {len(records)} {phase} records for {node.clients} clients")
    return records


def _record_failures(run: RunDir, phase: str, failures: list[NodeFailure]) -> None:
    run.update_json("failures.json", phase, [f.to_dict() for f in failures])


def run_phases(
    inventory: Inventory,
    run: RunDir,
    phases: Sequence[str],
    read: Optional[ReadPlan] = None,
    timed: bool = True,
) -> list[ClientResult]:
    """Push, run ``phases`` in turn on every ready node at once, gather, summarise.

    Raises BenchFailure when a node failed or a record is not ok, after saving the rest.
    """
    for phase in phases:  # a node that fails now must not contribute an earlier attempt
        run.forget(phase)
    ready = push(inventory, run)
    offsets = _offsets(run)
    settings = inventory.settings
    gates = {
        phase: StartGate([n.id for n in ready], settings.start_delay, settings.ready_timeout)
        for phase in (phases if timed else [])
    }
    if timed:
        print(
            f"{'+'.join(phases)}: {sum(n.clients for n in ready)} clients on {len(ready)} "
            f"node(s) start together {settings.start_delay:g} s after the last is ready"
        )

    def step(conn: Connection, node: Node) -> list[ClientResult]:
        offset = offsets.get(node.id, 0.0)
        records: list[ClientResult] = []
        try:
            for phase in phases:
                gate = gates.get(phase)
                watchers = [] if gate is None else [ReadyWatcher(gate, node.id, offset)]
                deadline = time.time() + offset + settings.phase_timeout * REQUEST_TIMEOUT_SHARE
                args = worker_args(inventory, node, phase, run.run_id, timed, read, deadline)
                records += run_worker(conn, node, inventory, run, phase, args, offset, watchers)
        finally:
            for gate in gates.values():  # a node that failed before it was ready
                gate.leave(node.id)  # holds no one up
        return records

    def cancel() -> None:
        print("interrupted: the nodes' clients will not start", file=sys.stderr)
        for gate in gates.values():
            gate.cancel()

    outcomes = on_nodes(inventory, "+".join(phases), step, ready, on_interrupt=cancel)
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
    records: list[ClientResult] = []
    for phase in phases:
        _record_failures(run, phase, failures)
        gathered = run.records(phase)  # what the nodes left now, including failed steps
        summary = stats.summarise(gathered, phase)
        run.update_json("summary.json", phase, summary.to_dict())
        if timed:
            run.write_text(f"{phase}.svg", report.svg_bar_chart(summary))
            print(report.phase_table(summary))
        records += gathered
    if failures:
        print(failure_table(failures), file=sys.stderr)
    bad = [r for r in records if not r.ok]
    if failures or bad:
        raise BenchFailure(
            f"{'+'.join(phases)}: {len(bad)} record(s) not ok, "
            f"{len(failures)} node(s) failed; see {run.path}/"
        )
    return records


def write(inventory: Inventory, run: RunDir) -> None:
    s = inventory.settings
    run.update_json(
        "plan.json", "write", {n.id: write_paths(inventory, n) for n in inventory.nodes}
    )
    if s.on_existing == "replace":
        print(
            f"write: files at {s.dst}/<node>/<client> left by an earlier run are replaced "
            "(defaults.on_existing: replace)"
        )
    records = run_phases(inventory, run, ["write"])
    replaced = sum(r.replaced for r in records)
    if replaced:
        print(f"write: replaced {replaced} file(s) left by an earlier run")


def read(inventory: Inventory, run: RunDir, plan: ReadPlan) -> None:
    run.update_json("plan.json", "read", plan.to_dict())
    if plan.pairing is not None:
        print("\n".join(report.plan_lines(plan.pairing)))
    run_phases(inventory, run, ["read"], read=plan)


def verify(inventory: Inventory, run: RunDir) -> None:
    """verify-write and verify-read on every node; a table naming every bad file."""
    phases = ["verify-write", "verify-read"]
    try:
        records = run_phases(inventory, run, phases, timed=False)
    except BenchFailure:
        print(report.verify_table(r for p in phases for r in run.records(p)))
        raise
    print(report.verify_table(records))
    print(f"verify: all {len(records)} files match the reference")


def clean(inventory: Inventory) -> None:
    """Remove the files of ``dst`` in storage and the local copies, per node."""

    def step(conn: Connection, node: Node) -> str:
        args = worker_args(inventory, node, "clean", "clean")
        return conn.run(worker_command(node, node_paths(inventory, node), args), hide=True).stdout

    ready = push(inventory, data=False)
    outcomes = on_nodes(inventory, "clean", step, ready)
    for o in outcomes:
        if o.value:
            print("\n".join(f"[{o.node.id}] {line}" for line in o.value.strip().splitlines()))
    failures = _failures(outcomes)
    if failures or len(ready) < len(inventory.nodes):
        if failures:
            print(failure_table(failures), file=sys.stderr)
        raise BenchFailure("clean failed on some nodes")


def show(run: RunDir) -> None:
    """Print the tables of a run again, from its files."""
    print(f"run {run.run_id} ({run.path})")
    for phase in ("write", "read"):
        records = run.records(phase)
        if records:
            print(report.phase_table(stats.summarise(records, phase)))
    checked = run.records("verify-write") + run.records("verify-read")
    if checked:
        print(report.verify_table(checked))
    for phase, failed in (run.read_json("failures.json") or {}).items():
        if failed:
            print(f"{phase}: " + failure_table([NodeFailure(**f) for f in failed]))
