"""Choosing the inventory without editing files: --inventory, FABRIC_BENCH_INVENTORY
(fabrun sets it), and a config file given with ``fab -f``."""

from __future__ import annotations

import json

import pytest

from .fabrun import fab, write_inventory

pytestmark = pytest.mark.integration


def test_the_inventory_flag_beats_the_environment(testbed, tmp_path):
    good = write_inventory(testbed, tmp_path / "good.yaml", nodes=2, dst="/it/flag")
    missing = tmp_path / "missing.yaml"
    assert fab(tmp_path, missing, "push").code == 2  # the environment's inventory
    run = fab(tmp_path, missing, "push", "--inventory", str(good), "--verbose")
    assert run.code == 0, run.text
    assert "[n0]" in run.out and "[n1]" in run.out and "[n2]" not in run.out


def test_a_config_file_sets_the_inventory_for_a_whole_chain(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "nightly-inv.yaml", nodes=2, dst="/it/config")
    config = tmp_path / "nightly.yaml"
    config.write_text(f"bench:\n  inventory: {inv}\n")
    run = fab(tmp_path, None, "-f", str(config), "write", "read", "verify")
    assert run.code == 0, run.text
    assert "verify: all 8 files match the reference" in run.out
    # this inventory's dst, not the committed inventory.yaml (which also fits the testbed)
    plan = json.loads((tmp_path / "results" / "latest" / "plan.json").read_text())
    assert plan["write"]["n0"] == ["/it/config/n0/0", "/it/config/n0/1"]
