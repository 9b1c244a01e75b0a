"""Stopping a run midway: Ctrl-C on the controller stops the load on every node and keeps
what finished; a node whose connection is lost stops by itself, is explained in words,
and its records are collected by the next command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import alluxio
import pytest

from .fabrun import fab, fab_popen, update_node, write_inventory
from .slowlink import SlowLink

pytestmark = pytest.mark.integration

#: each client's link to the proxy carries 1 MiB/s: an 8 MiB write lasts about 8 s
RATE = 1024 * 1024
SIZE = 8 * 1024 * 1024


def _slow_run(testbed, tmp_path: Path, dst: str) -> tuple[Path, SlowLink]:
    data = tmp_path / "ref.bin"
    data.write_bytes(os.urandom(SIZE))
    link = SlowLink(testbed.proxy_port, rate=RATE)
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, clients=1, dst=dst, data=str(data)
    )
    for index in (0, 1):
        update_node(inv, index, proxy={"host": "127.0.0.1", "port": link.port})
    return inv, link


def _start(tmp_path: Path, inv: Path) -> subprocess.Popen:
    return fab_popen(tmp_path, inv, "write", "--verbose")  # the nodes' ready lines


def _until_both_ready(proc: subprocess.Popen) -> list[str]:
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if sum("parbench-ready" in s for s in seen) == 2:
            return seen
    raise AssertionError("".join(seen))


def _records(tmp_path: Path, node: str) -> list[dict]:
    path = (tmp_path / "results" / "latest").resolve() / "nodes" / node / "write.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _no_worker_left(run_id: str) -> bool:
    found = subprocess.run(["pgrep", "-f", f"runs/{run_id}/"], capture_output=True, text=True)
    return found.stdout.strip() == ""


@pytest.mark.parametrize(
    ("sent", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],  # Ctrl-C; a scheduler's timeout
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_during_io_stops_every_node_and_keeps_what_finished(testbed, tmp_path, sent, code):
    """Over real SSH channels, mid-phase: Ctrl-C, or the SIGTERM a scheduler sends."""
    dst = f"/it/ctrl-c-{code}"
    inv, link = _slow_run(testbed, tmp_path, dst)
    proc = _start(tmp_path, inv)
    try:
        _until_both_ready(proc)
        time.sleep(2.0)  # into the IO: about 1.5 MiB of each 8 MiB file is written
        proc.send_signal(sent)
        stopped = time.monotonic()
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == code, rest
        took = time.monotonic() - stopped
    finally:
        proc.kill()
        link.close()
    assert took < 15, rest  # not the ~6 s the writes had left, plus fab's own exit
    assert "interrupted: stopping the clients on every node" in rest
    run_id = (tmp_path / "results" / "latest").resolve().name
    for node in ("n0", "n1"):
        [record] = _records(tmp_path, node)
        assert record["status"] == "error" and record["start"] > 0
        assert "stopped: the controller was interrupted" in record["error"]
        assert "partial file deleted" in record["error"]
    client = alluxio.Client("127.0.0.1", testbed.proxy_port)
    assert not any(client.exists(f"{dst}/{n}/0") for n in ("n0", "n1"))
    time.sleep(1)
    assert _no_worker_left(run_id)


def test_a_lost_node_is_explained_and_its_records_collected_later(testbed, tmp_path):
    inv, link = _slow_run(testbed, tmp_path, "/it/lost")
    sshd = int((testbed.layout.root / "nodes" / "n1" / "sshd.pid").read_text())
    proc = _start(tmp_path, inv)
    try:
        _until_both_ready(proc)
        time.sleep(1.0)
        subprocess.run(["pkill", "-P", str(sshd)], check=True)  # n1's SSH session dies
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1, rest
    finally:
        proc.kill()
        link.close()
    cause = [line for line in rest.splitlines() if line.strip().startswith("n1 ")]
    assert cause and "connection to n1 lost" in cause[0] and "into write" in cause[0], rest
    assert "0 of 1 records collected" in cause[0]
    assert [r["status"] for r in _records(tmp_path, "n0")] == ["ok"]  # the peer is kept
    failures = json.loads(((tmp_path / "results" / "latest") / "failures.json").read_text())
    assert [f["node"] for f in failures["write"]] == ["n1"]

    time.sleep(3)  # n1's worker stops its client and saves its record by itself
    shown = fab(tmp_path, inv, "report", "--collect")
    assert shown.code == 0, shown.text
    assert "[n1] write: 1 record(s) collected" in shown.out
    [record] = _records(tmp_path, "n1")
    assert "stopped: the connection to the controller was lost" in record["error"]
    assert "partial file deleted" in record["error"]
    summary = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())
    assert [n["node"] for n in summary["write"]["per_node"]] == ["n0", "n1"]


def test_a_proxy_dying_mid_write_gives_one_short_line_per_client(testbed, tmp_path):
    inv, link = _slow_run(testbed, tmp_path, "/it/proxy-cut")
    proc = _start(tmp_path, inv)
    try:
        _until_both_ready(proc)
        time.sleep(1.5)
        link.cut()  # every connection to the proxy breaks, partway through each file
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1, rest
    finally:
        proc.kill()
        link.close()
    for node in ("n0", "n1"):
        [record] = _records(tmp_path, node)
        error = record["error"]
        assert "\n" not in error and len(error) < 400, error
        assert f"alluxio proxy 127.0.0.1:{link.port}: write" in error
        assert f"/it/proxy-cut/{node}/0" in error and " after " in error
        assert "partial file" in error  # deleted, or said to remain
        assert "Traceback" in record["detail"]  # the whole chain, kept in the record
        shown = [line for line in rest.splitlines() if f"/it/proxy-cut/{node}/0" in line]
        assert len(shown) == 2, rest  # the client's own line and the table's, once each
