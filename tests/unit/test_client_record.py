"""The client record (worker/results.py) is frozen: the jobs fill in a draft and freeze
it, the controller changes a record by making a new one; older and newer files load."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from parbench.controller.nodes import runner
from parbench.controller.run.outcomes import save_records
from parbench.controller.run.rundir import RunDir
from parbench.worker.clients import Draft, Identity
from parbench.worker.results import SCHEMA, ClientResult, read_lines

IDENTITY = Identity("r1", "write", "n0", 0, "h", "posix", "/d/n0/0")


def test_a_record_cannot_be_changed_in_place() -> None:
    record = IDENTITY.record(bytes=5)
    with pytest.raises(FrozenInstanceError):
        record.clock_offset = 1.0  # type: ignore[misc]


def test_a_job_fills_in_a_draft_and_freezes_it() -> None:
    draft = IDENTITY.draft(files=0)
    draft.files += 2
    draft.status = "error"
    with pytest.raises(AttributeError, match="no field 'colour'"):
        draft.colour = "red"
    record = draft.freeze()
    assert isinstance(record, ClientResult) and (record.files, record.status) == (2, "error")
    assert isinstance(Draft(record).freeze(), ClientResult)


def test_an_older_record_and_a_newer_one_load(tmp_path: Path) -> None:
    """A record of an older parbench (no ready, made, found, cluster, warmup, iteration)
    loads with their defaults; a newer one's unknown keys are left out."""
    old = {
        "schema": SCHEMA, "run_id": "r0", "phase": "write", "node": "n0", "client": 0,
        "host": "h", "backend": "alluxio", "path": "/d/n0/0", "bytes": 7, "start": 1.0,
        "end": 2.0, "status": "ok", "algorithm": "md5",
    }  # fmt: skip
    newer = {**old, "client": 1, "colour": "red", "made": ["t1"]}
    [a, b] = read_lines([json.dumps(old), json.dumps(newer)], "x.jsonl")
    assert (a.made, a.found, a.ready, a.cluster, a.warmup, a.iteration) == (
        None, None, 0.0, None, False, 0,
    )  # fmt: skip
    assert b.made == ["t1"] and not hasattr(b, "colour")


def test_keeping_records_gives_new_ones_with_the_clock_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    told = [IDENTITY.record(bytes=5)]
    monkeypatch.setattr(runner, "check_records", lambda request, records: None)

    class Request:
        phase, iteration = "write", 0

    kept = runner.checked(told, Request(), 0.25)  # type: ignore[arg-type]
    assert [r.clock_offset for r in kept] == [0.25] and told[0].clock_offset == 0.0
    run = RunDir.create(tmp_path, "20261125T104212Z-51bb")
    save_records(run, "n0", Request(), kept)  # type: ignore[arg-type]
    [saved] = run.node_records("n0", "write")
    assert saved.clock_offset == 0.25
