"""Naming the run that made a file verify found in place of a run's own."""

from __future__ import annotations

from pathlib import Path

from parbench.controller.analysis.provenance import lines, makers
from parbench.worker.results import ClientResult, write_file

OLD, NEW, NEWER = "20261203T100000Z-aaaa", "20261203T110000Z-bbbb", "20261203T120000Z-cccc"


def record(run: str, phase: str, client: int, made: list, **fields: object) -> ClientResult:
    return ClientResult(
        run_id=run, phase=phase, node="n0", client=client, host="h", backend="alluxio",
        path=f"/pb/n0/{client}", made=made, **{"end": 1764756000.0, **fields},
    )  # fmt: skip


def save(root: Path, run: str, phase: str, records: list) -> None:
    write_file(records, str(root / run / "nodes" / "n0" / f"{phase}.jsonl"))


def test_the_run_that_made_each_file_is_named(tmp_path: Path) -> None:
    save(tmp_path, OLD, "write", [record(OLD, "write", 0, ["1.1", "2.1"])])
    save(tmp_path, NEW, "write", [record(NEW, "write", 0, ["3.1", "4.1"], iteration=1)])
    save(tmp_path, NEWER, "read", [record(NEWER, "read", 0, ["9.9"], local_path="/l/0")])
    (tmp_path / "latest").symlink_to(NEWER)
    found = {("n0", "/pb/n0/0"): "3.1", ("n0", "/pb/n0/0.1"): "4.1", ("n0", "/pb/n0/1"): "5.5"}
    known = makers(tmp_path, OLD, "verify-write", found)
    assert {place: m.run_id for place, m in known.items()} == {
        ("n0", "/pb/n0/0"): NEW,
        ("n0", "/pb/n0/0.1"): NEW,
    }
    assert known[("n0", "/pb/n0/0")].describe() == (
        f"run {NEW} (write, iteration 2, 2025-12-03 10:00:00 UTC)"
    )
    # copies are found by the reads' local paths
    copies = makers(tmp_path, OLD, "verify-read", {("n0", "/l/0"): "9.9"})
    assert copies[("n0", "/l/0")].run_id == NEWER


def test_lines_group_the_files_by_maker(tmp_path: Path) -> None:
    save(tmp_path, NEW, "write", [record(NEW, "write", 0, ["3.1"])])
    checked = [
        record(OLD, "verify-write", 0, None, status="replaced", found={"/pb/n0/0": "3.1"}),
        record(OLD, "verify-write", 1, None, status="replaced", found={"/pb/n0/1": "7.7"}),
    ]
    assert lines(tmp_path, OLD, checked) == [
        f"verify-write: 2 file(s) found are not run {OLD}'s:",
        f"  1 made by run {NEW} (write, iteration 1, 2025-12-03 10:00:00 UTC): n0:/pb/n0/0",
        "  1 made by no run under results/ (another tool or user): n0:/pb/n0/1",
    ]


def test_files_of_one_run_are_one_group_whatever_their_times(tmp_path: Path) -> None:
    save(tmp_path, NEW, "write", [
        record(NEW, "write", c, [f"{c}.1"], end=1764756000.0 + c) for c in range(4)
    ])  # fmt: skip
    checked = [
        record(OLD, "verify-write", c, None, status="replaced", found={f"/pb/n0/{c}": f"{c}.1"})
        for c in range(4)
    ]
    assert lines(tmp_path, OLD, checked) == [
        f"verify-write: 4 file(s) found are not run {OLD}'s:",
        f"  4 made by run {NEW} (write, iteration 1, 2025-12-03 10:00:03 UTC): n0:/pb/n0/0,"
        " n0:/pb/n0/1, n0:/pb/n0/2 and 1 more",
    ]
