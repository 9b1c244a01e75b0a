"""How many files of each client's sequence a phase with a duration left, which files
exactly (their tags, worker/made.py), and the requests of the phases after it that read
or check exactly those.

A write with a duration leaves, per client, the files its last iteration completed
(``{cid}``, ``{cid}.1``, ...: an iteration first removes the sequence an earlier one
left). A cross-node read then reads its source's files; verify-write checks each
writer's; verify-read checks each reader's copies (one per file of its source it read,
the last read iteration's). Without a duration every count is 1.

Verify is also told the tag the run recorded for each file (``ClientTask.expect``), so a
file another run put there since is reported replaced, not judged by its content. Where
the phase's records carry tags, a client without a record (its node lost) made nothing:
its files are expected as "" (not the run's). Records without tags (an older run, or a
node that could not tag) are checked by content only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from parbench.worker.protocol import PhaseRequest
from parbench.worker.results import ClientResult

from .plan import ReadPlan

Client = tuple[str, int]  # (node id, client)


def last_records(records: list[ClientResult]) -> dict[Client, ClientResult]:
    """The record of the last iteration of each client."""
    last: dict[Client, ClientResult] = {}
    for record in records:
        key = (record.node, record.client)
        if key not in last or record.iteration >= last[key].iteration:
            last[key] = record
    return last


def last_counts(records: list[ClientResult]) -> dict[Client, int]:
    """Files each client moved in the last iteration it has a record of."""
    return {key: r.files for key, r in last_records(records).items()}


Made = Optional[dict[Client, tuple[str, ...]]]


def made(records: list[ClientResult], counts: dict[Client, int]) -> Made:
    """The tags of the ``counts[client]`` files each client made in its last iteration
    ("" past what it made; a client without tags: none, checked by content), None when
    no record has tags."""
    if not any(r.made is not None for r in records):
        return None
    last = last_records(records)
    out: dict[Client, tuple[str, ...]] = {}
    for key, count in counts.items():
        record = last.get(key)
        if record is None or record.made is None:
            continue
        tags = list(record.made[:count])
        out[key] = tuple(tags + [""] * (count - len(tags)))
    return out


def _sources(plan: Optional[ReadPlan]) -> dict[Client, Client]:
    if plan is None or plan.pairing is None:
        return {}
    return {
        (a.reader_node, a.reader_client): (a.source_node, a.source_client)
        for a in plan.pairing.assignments
    }


def _counted(
    requests: dict[str, PhaseRequest], count: dict[Client, int], tags: Made = None
) -> dict[str, PhaseRequest]:
    """The requests with each client's ``files`` (at least 1: a missing file is reported
    missing, not skipped) and, given ``tags``, what each file must be (a client without a
    record made none of them)."""

    def expect(key: Client, files: int, has_record: bool) -> tuple[str, ...]:
        if tags is None:
            return ()
        if key in tags:
            return tags[key]
        return () if has_record else ("",) * files

    out = {}
    for nid, request in requests.items():
        tasks = []
        for task in request.clients:
            key = (nid, task.client)
            files = max(count.get(key, 1), 1)
            tasks.append(replace(task, files=files, expect=expect(key, files, key in count)))
        out[nid] = replace(request, clients=tuple(tasks))
    return out


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
    counts = {key: max(n, 1) for key, n in last_counts(writes).items()}
    return _counted(requests, counts, made(writes, counts))


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
    counts = {key: max(n, 1) for key, n in copies.items()}
    return _counted(requests, counts, made(reads, counts))
