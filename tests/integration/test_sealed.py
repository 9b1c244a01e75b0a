"""A run is sealed: later commands use what it recorded, not today's inventory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fabrun import edit_inventory, fab, write_inventory

pytestmark = pytest.mark.integration


def _run_id(tmp_path: Path) -> str:
    return (tmp_path / "results" / "latest").resolve().name


def test_verify_of_a_past_run_refuses_an_edited_inventory_or_uses_the_runs_own(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/odd topo/run")
    assert fab(tmp_path, inv, "write", "read").code == 0
    run_id = _run_id(tmp_path)
    run_dir = tmp_path / "results" / run_id
    edit_inventory(inv, lambda doc: doc["defaults"].update(dst="/it/elsewhere"))

    refused = fab(tmp_path, inv, "verify", "--run", run_id)
    assert refused.code == 2, refused.text
    assert "defaults.dst: '/it/odd topo/run' in the run, '/it/elsewhere' now" in refused.err
    assert "--from-run" in refused.err
    assert not list(run_dir.glob("nodes/*/verify-*.jsonl"))  # nothing of the run overwritten

    own = fab(tmp_path, inv, "verify", "--run", run_id, "--from-run")
    assert own.code == 0, own.text
    assert "verify: all 8 files match the reference" in own.out
    checked = {
        json.loads(line)["path"]
        for line in (run_dir / "nodes" / "n1" / "verify-write.jsonl").read_text().splitlines()
    }
    assert checked == {"/it/odd topo/run/n1/0", "/it/odd topo/run/n1/1"}


def test_a_later_read_with_another_inventory_is_refused(testbed, tmp_path):
    """The inventory behind FABRIC_BENCH_INVENTORY is not the one `latest` was made with."""
    first = write_inventory(testbed, tmp_path / "first.yaml", nodes=2, dst="/it/sealed-a")
    assert fab(tmp_path, first, "write").code == 0
    other = write_inventory(testbed, tmp_path / "other.yaml", nodes=3, dst="/it/sealed-a")
    refused = fab(tmp_path, other, "read")
    assert refused.code == 2, refused.text
    assert "nodes: n0, n1 in the run, n0, n1, n2 now" in refused.err


def test_verify_judges_exactly_what_the_run_made(testbed, tmp_path):
    """A write-only run checks its written files and says no read ran (copies an earlier
    run left are not taken for its own); a past run whose files a later run replaced is
    told so, naming that run, even though the bytes are the same."""
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/made")
    assert fab(tmp_path, inv, "write", "read").code == 0  # copies on the nodes
    first = _run_id(tmp_path)

    alone = fab(tmp_path, inv, "write", "verify")
    assert alone.code == 0, alone.text
    second = _run_id(tmp_path)
    assert f"verify: no read ran in run {second}: nothing of a read to check" in alone.out
    assert "verify-write: all 4 files ok" in alone.out and "verify-read" not in alone.out

    past = fab(tmp_path, inv, "verify", "--run", first)
    assert past.code == 1, past.text
    assert "verify-write: 0 of 4 files ok, 4 not ok (4 replaced)" in past.out
    assert "verify-read: all 4 files ok" in past.out  # its copies are still its own
    assert f"verify-write: 4 file(s) found are not run {first}'s:" in past.out
    assert f"4 made by run {second} (write, iteration 1, " in past.out
