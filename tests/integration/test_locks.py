"""Two runs never meet: the second is refused whole, naming the first, which keeps
every file; a lock whose holder is gone is taken over, and that is said."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parbench.controller.nodes.holders import machine_id, pid_namespace

from .fabrun import edit_inventory, fab, fab_popen, write_inventory

pytestmark = pytest.mark.integration


def test_a_second_write_started_meanwhile_is_refused_and_the_first_keeps_its_files(
    testbed, tmp_path
):
    # the first run holds the start for 8 s once its nodes are ready: the second comes then
    inv = write_inventory(testbed, tmp_path / "inv.yaml", dst="/it/locked", start_delay=8.0)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir(), second_dir.mkdir()
    first = fab_popen(first_dir, inv, "write", "--verbose")  # its nodes' ready lines
    try:
        assert first.stdout is not None
        for line in first.stdout:  # the first run holds its locks once its nodes are ready
            if "parbench-ready" in line:
                break
        second = fab(second_dir, inv, "write")
        rest = first.stdout.read()
        assert first.wait(timeout=120) == 0, rest
    finally:
        first.kill()
    assert second.code == 2, second.text
    assert "is locked by run" in second.err and f"pid {first.pid}" in second.err
    assert not (second_dir / "results" / "latest" / "nodes").exists()  # wrote nothing
    edit_inventory(inv, lambda doc: doc["defaults"].update(start_delay=0.5))
    # the first run's files are all there, intact: read back and verified
    checked = fab(first_dir, inv, "read", "verify")
    assert checked.code == 0, checked.text
    assert "verify: all 12 files match the reference" in checked.out


def test_a_lock_left_by_a_controller_that_is_gone_is_taken_over(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/stale")
    assert fab(tmp_path, inv, "push").code == 0
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    holder = {
        "run_id": "20200101T000000Z-dead",
        "token": "gone",
        "controller": socket.gethostname(),
        "pid": int(dead.stdout),
        "user": "someone",
        "since": time.time() - 60,
        "expires": time.time() + 3600,
        # its pid is asked about only in this pid namespace of this machine
        "machine": machine_id(),
        "pidns": pid_namespace(),
    }
    lock = Path(testbed.state.nodes[1]["workdir"]) / ".parbench-lock"
    lock.write_text(json.dumps(holder))
    run = fab(tmp_path, inv, "write")
    assert run.code == 0, run.text
    assert "took over the lock" in run.err and "20200101T000000Z-dead" in run.err
    assert "is not running" in run.err
    assert not lock.exists()  # given back at the end of the command
