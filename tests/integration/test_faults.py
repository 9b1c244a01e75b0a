"""Faults a user meets: each gives a message naming the node or key and the cause, the
right exit code (1: the benchmark found failures, 2: bad input), and the other nodes'
results are still gathered."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from testbed.procs import free_port_from

from .fabrun import edit_inventory, fab, fab_popen, update_node, write_inventory
from .slowlink import SlowLink

pytestmark = pytest.mark.integration


def test_a_malformed_inventory_names_the_key(testbed, tmp_path):
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, node_overrides={"port": "twenty-two"}
    )
    run = fab(tmp_path, inv, "write")
    assert run.code == 2, run.text
    assert "nodes[0].port" in run.err and "inv.yaml" in run.err
    assert "Traceback" not in run.text


def test_a_root_dst_is_refused_before_anything_runs(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/")
    run = fab(tmp_path, inv, "clean")
    assert run.code == 2, run.text
    assert "defaults.dst" in run.err


def test_a_missing_data_file_says_how_to_make_it(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, data=str(tmp_path / "nope.txt"))
    run = fab(tmp_path, inv, "write")
    assert run.code == 2, run.text
    assert "nope.txt" in run.err and "get_data.sh" in run.err


def test_cross_node_read_on_one_node_is_a_clear_error(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=1, dst="/it/single")
    run = fab(tmp_path, inv, "read")
    assert run.code == 2, run.text
    assert "two nodes" in run.err and "--mode same" in run.err


def _with_extra_node(testbed, tmp_path, dst: str, **node) -> Path:
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst=dst)
    extra = {"id": "bad", "workdir": str(tmp_path / "bad"), **node}
    return edit_inventory(inv, lambda doc: doc["nodes"].append({**doc["nodes"][0], **extra}))


def _gathered(tmp_path, phase: str) -> dict:
    run_dir = (tmp_path / "results" / "latest").resolve()
    return {p.parent.name: p for p in run_dir.glob(f"nodes/*/{phase}.jsonl")}


def test_an_unreachable_node_is_named_and_the_others_results_kept(testbed, tmp_path):
    closed = free_port_from(2400, set())
    inv = _with_extra_node(testbed, tmp_path, "/it/unreachable", port=closed)
    run = fab(tmp_path, inv, "write")
    assert run.code == 1, run.text
    failure = [line for line in run.err.splitlines() if line.strip().startswith("bad ")]
    assert failure and f"127.0.0.1:{closed}" in failure[0] and "unreachable" in failure[0]
    assert set(_gathered(tmp_path, "write")) == {"n0", "n1"}
    failures = json.loads(((tmp_path / "results" / "latest") / "failures.json").read_text())
    assert [f["node"] for f in failures["write"]] == ["bad"]


def test_a_refused_key_is_named(testbed, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    inv = _with_extra_node(testbed, tmp_path, "/it/refused", key=str(key))
    run = fab(tmp_path, inv, "push")
    assert run.code == 1, run.text  # the two good nodes are pushed, the bad one named
    line = [x for x in run.err.splitlines() if x.strip().startswith("bad ")][0]
    assert "authentication refused" in line


def test_an_unknown_host_key_is_refused(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/hostkey")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    edit_inventory(inv, lambda doc: doc["ssh"].update(known_hosts=str(empty)))
    run = fab(tmp_path, inv, "write")
    assert run.code == 1, run.text
    # one cause on both nodes: one line naming them and an example
    [line] = [x for x in run.err.splitlines() if "unknown host key" in x]
    assert line.startswith("  n[0-1] (2 nodes) push failed, e.g. n0 (root@127.0.0.1:"), line


def test_a_wrong_proxy_address_fails_every_client_by_name(testbed, tmp_path):
    """n1 is given a proxy port nothing listens on: each of its clients fails, named."""
    closed = free_port_from(40500, set())
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/proxy")
    update_node(inv, 1, proxy={"host": "127.0.0.1", "port": closed})
    run = fab(tmp_path, inv, "write")
    assert run.code == 1, run.text
    assert f"alluxio proxy 127.0.0.1:{closed}" in run.text
    gathered = _gathered(tmp_path, "write")
    assert set(gathered) == {"n0", "n1"}  # the records of the failure are saved
    records = [json.loads(line) for p in gathered.values() for line in p.read_text().splitlines()]
    assert [r["status"] for r in records if r["node"] == "n1"] == ["error", "error"]
    assert all(r["status"] == "ok" for r in records if r["node"] == "n0")


def test_a_wrong_proxy_on_the_node_that_locks_the_storage_root_is_one_clear_error(
    testbed, tmp_path
):
    closed = free_port_from(40600, set())
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/proxy-all",
        proxy={"host": "127.0.0.1", "port": closed},
    )  # fmt: skip
    run = fab(tmp_path, inv, "write")
    assert run.code == 1, run.text
    lines = [line for line in run.err.splitlines() if "cannot lock the storage root" in line]
    assert len(lines) == 1 and f"alluxio proxy 127.0.0.1:{closed}" in lines[0]
    assert not _gathered(tmp_path, "write")  # no client ran


def test_verify_without_any_run_asks_for_a_write_first(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/norun")
    run = fab(tmp_path, inv, "verify")
    assert run.code == 2, run.text
    assert "fab write" in run.err


def test_a_phase_run_again_counts_only_the_nodes_that_ran_now(testbed, tmp_path):
    """Read twice in one run; the second time n1 is unreachable: its earlier records must
    not stand in for it, and `fab report` names the failure."""
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=3, dst="/it/rerun")
    assert fab(tmp_path, inv, "write", "read").code == 0
    closed = free_port_from(2450, set())
    update_node(inv, 1, port=closed)
    run = fab(tmp_path, inv, "read")
    assert run.code == 1, run.text
    assert set(_gathered(tmp_path, "read")) == {"n0", "n2"}
    summary = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())
    assert summary["read"]["ok"] == 4 and [n["node"] for n in summary["read"]["per_node"]] == [
        "n0",
        "n2",
    ]
    shown = fab(tmp_path, inv, "report")
    assert shown.code == 0 and "n1" in shown.out and "unreachable" in shown.out


def test_clients_still_running_at_the_phase_timeout_leave_error_records(testbed, tmp_path):
    """The common start is scheduled after the deadline, so no client can finish: each is
    terminated on its node and still reported, instead of the node's records being lost."""
    inv = write_inventory(
        testbed,
        tmp_path / "inv.yaml",
        nodes=2,
        dst="/it/deadline",
        phase_timeout=10,
        start_delay=12.0,
    )
    run = fab(tmp_path, inv, "write")
    assert run.code == 1, run.text
    gathered = _gathered(tmp_path, "write")
    assert set(gathered) == {"n0", "n1"}
    records = [json.loads(line) for p in gathered.values() for line in p.read_text().splitlines()]
    assert len(records) == 4
    assert all("timed out: still running at the deadline" in r["error"] for r in records)


def test_a_workdir_that_is_not_parbenchs_is_refused_untouched(testbed, tmp_path):
    """A node pointed at someone's directory: push names it and deletes nothing there."""
    foreign = tmp_path / "home-of-someone"
    (foreign / "worker").mkdir(parents=True)
    (foreign / "worker" / "theirs.py").write_text("print('mine')\n")
    (foreign / "venv").mkdir()
    inv = _with_extra_node(testbed, tmp_path, "/it/foreign", workdir=str(foreign))
    run = fab(tmp_path, inv, "push")
    assert run.code == 1, run.text
    line = [x for x in run.err.splitlines() if x.strip().startswith("bad ")][0]
    assert f"workdir {foreign} is not empty and was not made by parbench" in line
    assert sorted(p.name for p in foreign.rglob("*")) == ["theirs.py", "venv", "worker"]


def test_an_interrupt_during_the_start_barrier_starts_no_client(testbed, tmp_path):
    """Ctrl-C while n1 is still setting up (its link to the proxy holds each connection
    for 6 s): no client on any node does its IO, each record says so, fab exits 130."""
    link = SlowLink(testbed.proxy_port, delay=6.0)
    inv = write_inventory(testbed, tmp_path / "inv.yaml", dst="/it/interrupt")
    update_node(inv, 1, proxy={"host": "127.0.0.1", "port": link.port})
    proc = fab_popen(tmp_path, inv, "write", "--verbose")  # the nodes' ready lines
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("[n0] parbench-ready"):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == 130, rest
    finally:
        proc.kill()
        link.close()
    assert "interrupted: stopping the clients on every node" in rest
    records = [
        json.loads(line)
        for p in _gathered(tmp_path, "write").values()
        for line in p.read_text().splitlines()
    ]
    assert len(records) == 6
    gave_up = ("not started", "stopped: the controller was interrupted")
    assert all(r["start"] == 0 and any(w in r["error"] for w in gave_up) for r in records)
