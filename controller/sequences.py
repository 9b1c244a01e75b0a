"""How many files of each client's sequence a phase with a duration left, and the
requests of the phases after it that read or check exactly those.

A write with a duration leaves, per client, the files its last iteration completed
(``{cid}``, ``{cid}.1``, ...: an iteration first removes the sequence an earlier one
left). A cross-node read then reads its source's files; verify-write checks each
writer's; verify-read checks each reader's copies (one per file of its source it read,
the last read iteration's). Without a duration every count is 1: the requests stay as
sealed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from worker.protocol import PhaseRequest
from worker.results import ClientResult

from .plan import ReadPlan

Client = tuple[str, int]  # (node id, client)


def last_counts(records: list[ClientResult]) -> dict[Client, int]:
    """Files each client moved in the last iteration it has a record of."""
    last: dict[Client, ClientResult] = {}
    for record in records:
        key = (record.node, record.client)
        if key not in last or record.iteration >= last[key].iteration:
            last[key] = record
    return {key: r.files for key, r in last.items()}


def _sources(plan: Optional[ReadPlan]) -> dict[Client, Client]:
    if plan is None or plan.pairing is None:
        return {}
    return {
        (a.reader_node, a.reader_client): (a.source_node, a.source_client)
        for a in plan.pairing.assignments
    }


def _counted(
    requests: dict[str, PhaseRequest], count: dict[Client, int]
) -> dict[str, PhaseRequest]:
    """The requests with each client's ``files`` (at least 1: a missing file is reported
    missing, not skipped)."""
    return {
        nid: replace(
            request,
            clients=tuple(
                replace(task, files=max(count.get((nid, task.client), 1), 1))
                for task in request.clients
            ),
        )
        for nid, request in requests.items()
    }


def read_requests(
    requests: dict[str, PhaseRequest], plan: ReadPlan, writes: list[ClientResult]
) -> dict[str, PhaseRequest]:
    """A cross-node read of the files each source's write left (same-file: one file)."""
    written = last_counts(writes)
    sources = _sources(plan)
    return _counted(requests, {r: written.get(s, 1) for r, s in sources.items()})


def verify_write_requests(
    requests: dict[str, PhaseRequest], writes: list[ClientResult]
) -> dict[str, PhaseRequest]:
    return _counted(requests, last_counts(writes))


def verify_read_requests(
    requests: dict[str, PhaseRequest],
    plan: Optional[ReadPlan],
    writes: list[ClientResult],
    reads: list[ClientResult],
) -> dict[str, PhaseRequest]:
    """Each reader's copies: one per file of its source it read (same-file: one)."""
    written = last_counts(writes)
    sources = _sources(plan)
    copies = {
        reader: min(files, written.get(sources[reader], 1)) if reader in sources else min(files, 1)
        for reader, files in last_counts(reads).items()
    }
    return _counted(requests, copies)
