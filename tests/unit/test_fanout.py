"""How many nodes the controller works on at once, and what it needs for many."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller.nodes import fleet, limits, remote
from parbench.controller.run.inventory import load


def _inventory(tmp_path: Path, nodes: int, fanout: int):
    listed = "".join(f"  - {{id: n{i}, host: h{i}}}\n" for i in range(nodes))
    (tmp_path / "inventory.yaml").write_text(f"defaults: {{fanout: {fanout}}}\nnodes:\n{listed}")
    return load(tmp_path / "inventory.yaml")


@pytest.mark.parametrize("together, most", [(False, 3), (True, 10)])
def test_steps_run_fanout_nodes_at_a_time_and_a_timed_phase_all_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, together: bool, most: int
) -> None:
    fake = SimpleNamespace(open=lambda: None, close=lambda: None)
    monkeypatch.setattr(remote, "connect", lambda inv, node: fake)
    inventory = _inventory(tmp_path, 10, fanout=3)
    running, peak, lock = [0], [0], threading.Lock()
    everyone = threading.Barrier(10, timeout=5) if together else None

    def step(conn, node) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if everyone is not None:
            everyone.wait()  # a common start: only possible if all run at once
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return node.id

    outcomes = fleet.on_nodes(inventory, "push", step, together=together)
    assert [o.failure for o in outcomes if o.failure] == []
    assert sorted(o.value for o in outcomes) == sorted(f"n{i}" for i in range(10))
    assert peak[0] == most


def test_a_descriptor_above_1023_is_polled_not_selected() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    read, write = os.pipe()
    high = os.dup2(read, 1500)  # where select.select raises ValueError
    try:
        assert not remote.readable(high)
        os.write(write, b"stop\n")
        assert remote.readable(high)
    finally:
        for fd in (read, write, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_files_limit_is_raised_for_many_nodes_or_the_cause_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limit: set_to.append(limit))
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (1024, 4096))
    limits.ensure_open_files(100)  # within the soft limit: left alone
    assert set_to == []
    limits.ensure_open_files(1000)
    assert set_to == [(limits.files_needed(1000), 4096)]
    with pytest.raises(limits.LimitError, match=r"5000 nodes need about \d+ open files .* 4096"):
        limits.ensure_open_files(5000)
