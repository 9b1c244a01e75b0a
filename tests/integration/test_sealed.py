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
