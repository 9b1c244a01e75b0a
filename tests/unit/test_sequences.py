"""The files a phase with a duration left, and the later requests that cover exactly them."""

from __future__ import annotations

from dataclasses import replace

from parbench.controller.run.pairing import Assignment, Pairing
from parbench.controller.run.plan import ReadPlan
from parbench.controller.run.sequences import (
    last_counts,
    read_requests,
    verify_read_requests,
    verify_write_requests,
)
from parbench.worker.protocol import ClientTask, PhaseRequest, StorageConfig
from parbench.worker.results import ClientResult


def rec(node: str, client: int, files: int, iteration: int = 0) -> ClientResult:
    return ClientResult(
        run_id="r", phase="write", node=node, client=client, host="h", backend="posix",
        path=f"/d/{node}/{client}", files=files, iteration=iteration,
    )  # fmt: skip


def request(node: str, phase: str) -> PhaseRequest:
    return PhaseRequest(
        run_id="r", node=node, phase=phase, storage=StorageConfig(),
        clients=(ClientTask(0, f"/d/x/{node}0", "/l/0"), ClientTask(1, f"/d/x/{node}1", "/l/1")),
    )  # fmt: skip


PLAN = ReadPlan(
    "cross",
    pairing=Pairing(
        assignments=(
            Assignment("n0", 0, "n1", 0),
            Assignment("n0", 1, "n1", 1),
            Assignment("n1", 0, "n0", 1),
            Assignment("n1", 1, "n0", 0),
        ),
        unread=(),
        read_twice=(),
    ),
)
WRITES = [rec("n0", 0, 9), rec("n0", 0, 5, iteration=1), rec("n0", 1, 3), rec("n1", 0, 7)]


def files(requests: dict[str, PhaseRequest]) -> dict[str, list[int]]:
    return {nid: [t.files for t in r.clients] for nid, r in requests.items()}


def test_the_last_iteration_counts() -> None:
    assert last_counts(WRITES) == {("n0", 0): 5, ("n0", 1): 3, ("n1", 0): 7}


def test_each_later_phase_covers_what_was_left() -> None:
    reads = {n: request(n, "read") for n in ("n0", "n1")}
    # n1/1 wrote nothing on record: 1, so that a missing file is reported, not skipped
    assert files(read_requests(reads, PLAN, WRITES)) == {"n0": [7, 1], "n1": [3, 5]}
    checks = {n: request(n, "verify-write") for n in ("n0", "n1")}
    assert files(verify_write_requests(checks, WRITES)) == {"n0": [5, 3], "n1": [7, 1]}
    copies = {n: request(n, "verify-read") for n in ("n0", "n1")}
    read_back = [rec("n0", 0, 20), rec("n0", 1, 0), rec("n1", 0, 2), rec("n1", 1, 2)]
    # a reader that went round its source's 7 files has 7 copies; one that read 2: 2
    assert files(verify_read_requests(copies, PLAN, WRITES, read_back)) == {
        "n0": [7, 1],
        "n1": [2, 2],
    }
    same = ReadPlan("same", src="/one")
    assert files(verify_read_requests(copies, same, WRITES, read_back)) == {
        "n0": [1, 1],
        "n1": [1, 1],
    }


def expects(requests: dict[str, PhaseRequest]) -> dict[str, list[tuple[str, ...]]]:
    return {nid: [t.expect for t in r.clients] for nid, r in requests.items()}


def test_verify_is_told_the_tags_of_what_the_last_iteration_made() -> None:
    writes = [
        replace(rec("n0", 0, 2), made=["a", "b"]),
        replace(rec("n0", 0, 2, iteration=1), made=["c", ""]),  # its second file is gone
        replace(rec("n0", 1, 0), made=[]),  # failed before its first file
        rec("n1", 0, 1),  # a node that could not tag: content only
    ]
    checks = {n: request(n, "verify-write") for n in ("n0", "n1")}
    told = verify_write_requests(checks, writes)
    # n1/1 has no record in a run whose records carry tags: it made nothing there
    assert expects(told) == {"n0": [("c", ""), ("",)], "n1": [(), ("",)]}
    assert files(told) == {"n0": [2, 1], "n1": [1, 1]}
    assert expects(verify_write_requests(checks, WRITES)) == {"n0": [(), ()], "n1": [(), ()]}
    assert all(len(t.expect) in (0, t.files) for r in told.values() for t in r.clients)


def test_verify_read_is_told_the_tags_of_the_copies() -> None:
    copies = {n: request(n, "verify-read") for n in ("n0", "n1")}
    reads = [replace(rec("n0", 0, 20), phase="read", made=["x"] * 7)]
    told = verify_read_requests(copies, PLAN, WRITES, reads)
    assert expects(told) == {"n0": [("x",) * 7, ("",)], "n1": [("",), ("",)]}
