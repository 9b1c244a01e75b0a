"""The bodies of the fab commands over the phase loop (controller/phases.py): push, write,
read, verify, meta, clean, and a run's tables and page again (report/show/html), and a
sweep of runs over a matrix of settings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from fabric import Connection

from parbench.worker.protocol import (
    NATIVE_BACKENDS,
    TIMED_PHASES,
    VERIFY_PHASES,
    PhaseRequest,
    WorkdirClean,
)
from parbench.worker.results import ClientResult

from . import phases
from . import sweep as sweeping
from .analysis import history, metastats, provenance, stats
from .analysis import rounds as shuffle
from .nodes import locks, runner
from .nodes.fleet import current as fleet
from .nodes.fleet import on_nodes
from .nodes.nodeoutput import printable
from .nodes.push import generated_size
from .output import console, report, sweeptable
from .phases import ONCE, BenchFailure, failure_table, failures_of, run_phases, summary_of
from .run import sequences
from .run.inventory import Inventory, Node
from .run.iterations import IterationPlan
from .run.plan import (
    NodePaths,
    PlanError,
    ReadPlan,
    new_run_id,
    node_request,
    phase_budget,
    worker_command,
)
from .run.run import Run
from .run.rundir import NodeFailure, ResultsError, RunDir


def push_all(inventory: Inventory) -> None:
    """``fab push``: every node up to date, or BenchFailure naming how many are not; a
    node another run holds is left alone (LockHeld)."""
    held = locks.of_run(inventory, f"push-{new_run_id()}")
    try:
        ready = phases.push(inventory, held=held)
    finally:
        held.release()
    if len(ready) < len(inventory.nodes):
        missing = len(inventory.nodes) - len(ready)
        raise BenchFailure(f"push: {missing} of {len(inventory.nodes)} node(s) not prepared")


def write(run: Run, rounds: IterationPlan = ONCE) -> None:
    s = run.inventory.settings
    if s.backend == "native":
        _native_write(s.dst, s.on_existing, rounds)
    elif s.on_existing == "replace":
        console.note(
            f"write: files at {s.dst}/<node>/<client> left by an earlier run are replaced "
            "(defaults.on_existing: replace)"
        )
    records = run_phases(run, {"write": run.requests["write"]}, rounds)
    replaced = sum(r.replaced for r in records if r.iteration == 0)
    if replaced:
        console.note(f"write: replaced {replaced} file(s) left by an earlier run")


def _native_write(dst: str, on_existing: str, rounds: IterationPlan) -> None:
    """What a native write (worker/native.py) does unlike the others, said before it runs;
    PlanError for ``on_existing: refuse``, which it cannot keep."""
    if on_existing == "refuse":
        raise PlanError(
            "defaults.on_existing: refuse: a native write cannot keep it (StressClientIOBench"
            f" deletes and remakes {dst}/<node>/native); use replace, or another backend"
        )
    once = ", once: it cannot write for a time (the duration is the read's)"
    console.note(
        f"native write: StressClientIOBench deletes and remakes {dst}/<node>/native and"
        f" writes one file per client there{once if rounds.duration else ''}"
    )


#: what a native read reads (worker/native.py), said in place of the cross-node pairing
NATIVE_READ = (
    "native read: on each node, StressClientIOBench's threads read the files its write made"
    " there, each its own, from the start again at the end, for the phase's duration"
)


def read(
    run: Run, mode: str = "cross", src: Optional[str] = None, rounds: IterationPlan = ONCE
) -> None:
    """Cross-node: the run's sealed read; same-file: every client reads ``src``."""
    if mode == "same" and run.inventory.settings.backend == "native":
        raise PlanError(
            "--mode same: a native read reads the files StressClientIOBench wrote on each node"
            " (`fab write --backend native`), never --src"
        )
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
            run.requests["read"], run.read_plan, run.records("write")
        )
        run.dir.update_doc("plan.json", {"read": run.read_plan.to_dict()})
        if run.inventory.settings.backend == "native":
            console.note(NATIVE_READ)
        else:
            console.pairing(report.plan_lines(run.read_plan.pairing))  # type: ignore[arg-type]
    run_phases(run, {"read": requests}, rounds, mode)


def verify(run: Run) -> None:
    """verify-write for the files the run's write made, verify-read for the copies its
    read made (only the phases that ran); a table naming every bad file, and the run that
    made each file found in place of the run's."""
    writes, reads = run.records("write"), run.records("read")
    if any(r.backend == "native" for r in (*writes, *reads)):
        raise PlanError(
            f"run {run.run_id} ran with backend native: its files were written by Alluxio's"
            " StressClientIOBench with its own content (not the reference file) and cannot be"
            " verified against the reference; verify a run of backend alluxio or posix"
        )
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
            console.out(
                f"verify: no {phase} ran in run {run.run_id}: nothing of a {phase} to check"
            )
    phases = list(requests)
    try:
        records = run_phases(run, requests)
    except BenchFailure as failed:
        if failed.result is not None:  # what this attempt checked (none ran: nothing)
            checked = [r for p in phases for r in failed.result.records(p)]
            console.verified(checked)
            console.out("\n".join(provenance.lines(run.dir.root, run.run_id, checked)))
        raise
    console.verified(records)
    console.out(f"verify: all {sum(r.files for r in records)} files match the reference")


def meta(run: Run) -> None:
    """The metadata phase: every client creates, stats, lists and deletes files."""
    if "meta" not in run.requests:
        raise PlanError(
            f"run {run.run_id} was sealed without a meta phase (an older parbench): start a"
            " new run with `fab meta` on its own"
        )
    s = run.inventory.settings
    console.note(
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
        runner.send(conn, remote, request.to_json() + "\n")
        return conn.run(worker_command(node, "run", remote), hide=True).stdout

    run_id = f"clean-{new_run_id()}"
    ready = phases.push(inventory, data=False, held=locks.of_run(inventory, run_id))
    held = locks.hold(inventory, run_id, ready)
    keep = locks.held_runs()  # e.g. the run of a chained `fab write clean --runs`
    try:
        outcomes = on_nodes(inventory, "clean", step, ready)
    finally:
        held.release()
        for node in ready if data else ():  # its generated data gone: a later push makes it
            fleet().unready(node)
    said = {
        o.node.id: [printable(x) for x in (o.value or "").strip().splitlines()] for o in outcomes
    }
    console.cleaned({node: lines for node, lines in said.items() if lines}, len(ready))
    failures = failures_of(outcomes)
    if failures or len(ready) < len(inventory.nodes):
        if failures:
            console.failed(failure_table(failures), failures)
        raise BenchFailure("clean failed on some nodes")


def summaries(
    run: RunDir, records: Optional[dict[str, list[ClientResult]]] = None
) -> dict[str, stats.PhaseSummary | metastats.MetaSummary]:
    """Each timed phase's summary, from the run's records (``records``, by phase, when
    they are read already) and the verdicts it kept."""
    saved = run.read_doc("summary.json", {})
    if records is None:
        records = {phase: run.records(phase) for phase in TIMED_PHASES}
    return {
        phase: summary_of(phase, found).restored(saved.get(phase, {}))
        for phase in TIMED_PHASES
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
    console.out(f"run {run.run_id} ({run.path})")
    told, damaged = damaged is None, [] if damaged is None else damaged
    records = {phase: run.records(phase, damaged) for phase in TIMED_PHASES}
    for summary in summaries(run, records).values():
        console.phase_end([summary], [], "")
    checked = [r for phase in VERIFY_PHASES for r in run.records(phase, damaged)]
    if checked:
        console.verified(checked)
    for line in _failure_lines(run):
        console.out(line)
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

    kinds = (*TIMED_PHASES, *VERIFY_PHASES)
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


def push_metrics(run: RunDir, url: str) -> str:
    """Push the run's figures to the Pushgateway at ``url``; the line that says so."""
    from .output import openmetrics

    openmetrics.push(run, url)
    return f"pushed: the figures of {run.run_id} to {url} (job {openmetrics.JOB})"


def sweep(
    base: Inventory,
    axes: dict[str, list[str]],
    steps: Sequence[str],
    root: Path,
    rounds: int = sweeping.DEFAULT_ROUNDS,
    seed: Optional[int] = None,
    warmup: bool = True,
    baseline: Optional[str] = None,
) -> None:
    """``fab sweep``: a warm-up run of the first point (``warmup``), then ``rounds``
    rounds of every point in a shuffled order (``seed``), each point-round a run of
    ``steps`` (write, read, verify); a table of the points' medians at the end (ratios to
    the ``baseline`` point); BenchFailure when a run failed."""
    found = sweeping.points(base, axes)
    unknown = [s for s in steps if s not in ("write", "read", "verify")]
    if unknown or "write" not in steps:
        raise PlanError(f"--steps: write, then any of read, verify; got {','.join(steps)}")
    rounds = sweeping.check_rounds(rounds)
    seed = shuffle.new_seed() if seed is None else sweeping.check_seed(seed)
    against = sweeping.parse_baseline(baseline, found)
    sweep_id = sweeping.new_sweep_id()
    # every size's data generated by the first push: each node probed once for the sweep
    fleet().sizes |= {s for p in found if (s := generated_size(p.inventory)) is not None}
    console.out(
        f"sweep {sweep_id}: {len(found)} point(s) of {', '.join(axes)}; each: {','.join(steps)};"
        f" {'a warm-up run, then ' if warmup else ''}{rounds} round(s) in shuffled order,"
        f" seed {seed} (--seed {seed} repeats it)"
    )

    if "verify" in steps and any(p.inventory.settings.backend in NATIVE_BACKENDS for p in found):
        console.out(
            "sweep: the native points are not verified (StressClientIOBench writes content"
            " of its own, not the reference)"
        )

    def one(point: sweeping.Point, labels: dict[str, str], warm: bool) -> tuple[str, dict]:
        settings = point.inventory.settings
        rounds = settings.iteration_plan.fits(phase_budget(settings))  # the inventory's repeats
        run = fleet().runs.start(point.inventory, root, labels)
        reads = "read" in steps and len(point.inventory.nodes) > 1
        try:
            write(run, rounds)
            if reads:
                read(run, rounds=rounds)
            # the warm-up times nothing verify does; native files are StressBench's own
            if "verify" in steps and not warm and settings.backend not in NATIVE_BACKENDS:
                verify(run)
        except BenchFailure as exc:
            raise PointFailed(str(exc), exc.code, run.run_id) from None
        except Exception:  # refused (a lock held, a bad point) before any node was asked
            if not run.dir.sent():
                fleet().runs.discard(run, None)  # no trace: no folder, latest unmoved
            raise
        return run.run_id, run.dir.read_doc("summary.json", {})

    done = sweeping.run(sweep_id, found, one, root, rounds, seed, warmup, against)
    doc = sweeping.document(done)
    console.out(sweeptable.sweep_table(doc, list(axes)))
    from .output import htmlreport  # matplotlib loads only when a page is asked for

    page = root / "sweeps" / f"{sweep_id}.html"
    console.out(f"sweep {sweep_id}: {htmlreport.write_sweep(page, doc)}")
    failed = [o for o in done.points if o.error]
    if failed:
        raise BenchFailure(
            f"sweep {sweep_id}: {len(failed)} of {len(done.points)} point(s) failed in some round"
        )
