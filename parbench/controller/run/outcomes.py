"""What one node's worker did for one request, in memory (the nodes layer makes it and
touches no file: controller/nodes/runner.py); what a phase command did, in memory (the
outcomes of its iterations, gathered by ``Gathered`` as the node threads report them:
``PhaseResult``), and saving it in the run folder: each node's files after every
iteration (``save_nodes``), the phase's documents once, at its end (``save_phase``).

::

    nodes/<node>/<phase>.request.json   the request, saved before it is sent (collectable)
    nodes/<node>/<phase>.log            what the worker printed there
    nodes/<node>/<phase>.jsonl          its records, next to those of the phase's
                                        other iterations

Each iteration's records are appended to the node's records file (``save_nodes``), so
saving an iteration costs its own records whatever the number of iterations before it.
An append is whole lines, written then fsynced: a controller killed during one leaves at
most a torn last line, which the run folder's readers leave out (and name in a report),
and ``collect`` fetches that iteration again from the node.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Optional, Sequence

from parbench.worker.protocol import PhaseRequest
from parbench.worker.results import ClientResult, write_file

from .rundir import NodeFailure, RunDir


@dataclass(frozen=True)
class NodeOutcome:
    """One request run on one node: its records (clock offset filled in; ``fetched``:
    they were fetched and checked, possibly none), the node's log of the step (None: the
    worker's output never came back), and why the step failed (None: it did not)."""

    node: str
    request: PhaseRequest
    records: tuple[ClientResult, ...] = ()
    fetched: bool = False
    log: Optional[str] = None
    failure: Optional[str] = None
    clock_offset: float = 0.0


def save_sent(run: RunDir, node: str, request: PhaseRequest) -> None:
    """The request about to be sent to ``node``: a later command collects its records
    from there when this one loses them."""
    run.node_file(node, f"{request.phase}.request.json").write_text(request.to_json() + "\n")


def append_records(path: Path, records: Sequence[ClientResult]) -> None:
    """Append ``records`` to ``path`` (created if need be) as whole lines, then fsync:
    what is on disk is every earlier append plus, if the process dies meanwhile, part of
    this one, its last line torn (left out by the readers, see rundir._read_records).
    An append that fails (a full disk) is cut off again, so the next starts on a line."""
    data = memoryview("".join(r.to_json() + "\n" for r in records).encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def save_records(run: RunDir, node: str, request: PhaseRequest, records: list) -> None:
    """``request``'s records, next to those of the phase's other iterations on ``node``
    (the file rewritten: its records of that iteration, and a torn last line, replaced)."""
    saved = run.node_file(node, f"{request.phase}.jsonl")
    others = [r for r in run.node_records(node, request.phase) if r.iteration != request.iteration]
    write_file(others + list(records), str(saved))


class Gathered:
    """The outcomes of a phase command as its node threads report them, until it is saved:
    a thread left behind after an interrupt then neither sends nor keeps anything."""

    def __init__(self, run: RunDir) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._outcomes: list[NodeOutcome] = []
        self._saved = 0  # how many of them unsaved() has handed out
        self._closed = False

    def sent(self, node: str, request: PhaseRequest) -> bool:
        """Save the request about to be sent (False: the phase is saved, send nothing)."""
        with self._lock:
            if not self._closed:
                save_sent(self._run, node, request)
            return not self._closed

    def add(self, outcome: NodeOutcome) -> None:
        with self._lock:
            if not self._closed:
                self._outcomes.append(outcome)

    def unsaved(self, close: bool = False) -> tuple[NodeOutcome, ...]:
        """The outcomes reported since the last call, in the order they came, for
        :func:`save_nodes` (``close``: no more are taken)."""
        with self._lock:
            self._closed = self._closed or close
            new = tuple(self._outcomes[self._saved :])
            self._saved = len(self._outcomes)
            return new

    def close(self) -> tuple[NodeOutcome, ...]:
        """The outcomes reported so far, in the order they came; no more are taken."""
        with self._lock:
            self._closed = True
            return tuple(self._outcomes)


@dataclass(frozen=True)
class PhaseResult:
    """What a phase command did: its phases, every node outcome of its iterations (in the
    order they came), the node failures, and the summary of each phase (its dict)."""

    phases: tuple[str, ...]
    outcomes: tuple[NodeOutcome, ...]
    failures: tuple[NodeFailure, ...] = ()
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def node_records(self, phase: str) -> dict[str, list[ClientResult]]:
        """Node -> its fetched records of ``phase``, earlier iterations first, in the
        order of the nodes' records files (a node with none fetched: absent)."""
        kept: dict[str, list[ClientResult]] = {}
        for o in self.outcomes:
            if o.request.phase == phase and o.fetched:
                kept.setdefault(o.node, []).extend(o.records)
        order = sorted(kept, key=lambda node: PurePath("nodes", node, f"{phase}.jsonl"))
        return {node: kept[node] for node in order}

    def records(self, phase: str) -> list[ClientResult]:
        """Every record of ``phase``, as the run folder lists them once saved."""
        return [r for records in self.node_records(phase).values() for r in records]

    def logs(self, phase: str) -> dict[str, str]:
        """Node -> the log of its latest step of ``phase`` whose output came back."""
        kept = [o for o in self.outcomes if o.request.phase == phase and o.log is not None]
        return {o.node: o.log for o in kept if o.log is not None}


def keep_cluster(run: RunDir, records: Sequence[ClientResult]) -> None:
    """cluster.json: the storage's version each node's proxy told (distinct ones joined
    as the run's ``version``), for the history and the report."""
    seen = {r.node: r.cluster for r in records if r.cluster}
    if seen:
        with run.locked():
            data = run.read_doc("cluster.json", {})
            data["nodes"] = {**data.get("nodes", {}), **seen}
            data["version"] = ", ".join(sorted(set(data["nodes"].values())))
            run.write_doc("cluster.json", data)


def save_nodes(run: RunDir, result: PhaseResult) -> None:
    """Save outcomes not saved yet (``result``: those of the iterations since the last
    call, :meth:`Gathered.unsaved`): each node's records of each phase appended to its
    file, its latest log written over the one before."""
    for phase in result.phases:
        for node, log in result.logs(phase).items():
            run.node_file(node, f"{phase}.log").write_text(log)
        for node, records in result.node_records(phase).items():
            append_records(run.node_file(node, f"{phase}.jsonl"), records)


def save_phase(run: RunDir, result: PhaseResult) -> None:
    """Save the documents of what a phase command did, once, at its end (its nodes'
    files are saved after every iteration: :func:`save_nodes`): its phases' entries of
    failures.json and summary.json, and the storage's version in cluster.json."""
    failures = [f.to_dict() for f in result.failures]
    run.update_doc("failures.json", {phase: failures for phase in result.phases})
    run.update_doc("summary.json", dict(result.summaries))
    keep_cluster(run, [r for phase in result.phases for r in result.records(phase)])
