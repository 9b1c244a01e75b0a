"""What one node's worker did for one request, in memory (the nodes layer makes it and
touches no file: controller/nodes/runner.py), and saving it in the run folder.

::

    nodes/<node>/<phase>.request.json   the request, saved before it is sent (collectable)
    nodes/<node>/<phase>.log            what the worker printed there
    nodes/<node>/<phase>.jsonl          its records, next to those of the phase's
                                        other iterations
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from worker.protocol import PhaseRequest
from worker.results import ClientResult, write_file

from .rundir import RunDir


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


def save_records(run: RunDir, node: str, request: PhaseRequest, records: list) -> None:
    """``request``'s records, next to those of the phase's other iterations on ``node``."""
    saved = run.node_file(node, f"{request.phase}.jsonl")
    others = [r for r in run.node_records(node, request.phase) if r.iteration != request.iteration]
    write_file(others + list(records), str(saved))


def save_outcome(run: RunDir, outcome: NodeOutcome) -> None:
    """The node's log and records of one step, as far as the step got."""
    phase = outcome.request.phase
    if outcome.log is not None:
        run.node_file(outcome.node, f"{phase}.log").write_text(outcome.log)
    if outcome.fetched:
        save_records(run, outcome.node, outcome.request, list(outcome.records))
