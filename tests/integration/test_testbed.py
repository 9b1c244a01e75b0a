"""The testbed itself: real sshd nodes reached through Fabric, a real Alluxio proxy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import alluxio
import paramiko
import pytest
from fabric import Config, Connection

from parbench.controller.run.inventory import load
from testbed import alluxio as tb_alluxio
from testbed import bed
from testbed.layout import Layout

pytestmark = pytest.mark.integration


def _connection(testbed, node: dict) -> Connection:
    conn = Connection(
        "127.0.0.1",
        user=testbed.state.user,
        port=node["port"],
        config=Config(overrides={"run": {"in_stream": False}}),
        connect_kwargs={
            "key_filename": str(testbed.layout.client_key),
            "look_for_keys": False,
            "allow_agent": False,
        },
    )
    conn.client.load_host_keys(str(testbed.layout.known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def test_every_node_runs_a_command_through_fabric_with_checked_host_keys(testbed):
    for node in testbed.state.nodes:
        with _connection(testbed, node) as conn:
            result = conn.run(f"cd {node['workdir']} && pwd && echo {node['id']}", hide=True)
        assert result.stdout.split() == [node["workdir"], node["id"]]


def test_an_unknown_host_key_is_refused(testbed, tmp_path):
    node = testbed.state.nodes[0]
    conn = Connection(
        "127.0.0.1",
        user=testbed.state.user,
        port=node["port"],
        connect_kwargs={"key_filename": str(testbed.layout.client_key)},
    )
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())  # nothing loaded
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        conn.open()


def test_sftp_works_on_the_nodes(testbed, tmp_path):
    node = testbed.state.nodes[1]
    local = tmp_path / "payload"
    local.write_bytes(os.urandom(100_000))
    with _connection(testbed, node) as conn:
        conn.put(str(local), f"{node['workdir']}/payload")
        conn.get(f"{node['workdir']}/payload", str(tmp_path / "back"))
        conn.run(f"rm {node['workdir']}/payload")
    assert (tmp_path / "back").read_bytes() == local.read_bytes()


def test_a_file_written_through_the_proxy_reads_back_identical(testbed):
    client = alluxio.Client("127.0.0.1", testbed.proxy_port)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path = f"/it-testbed/roundtrip-{time.time_ns()}"
    with client.open(path, "w", alluxio.option.CreateFile(recursive=True)) as writer:
        writer.write(payload)
    with client.open(path, "r") as reader:
        assert hashlib.sha256(reader.read()).digest() == hashlib.sha256(payload).digest()
    client.delete(path)


def test_fs_checksum_through_the_wrapper_equals_the_md5(testbed):
    client = alluxio.Client("127.0.0.1", testbed.proxy_port)
    payload = os.urandom(200_000)
    path = f"/it-testbed/checksum-{time.time_ns()}"
    with client.open(path, "w", alluxio.option.CreateFile(recursive=True)) as writer:
        writer.write(payload)
    shell = testbed.layout.alluxio_home / "bin" / "alluxio"
    checksum = subprocess.run(
        [str(shell), "fs", "checksum", path], capture_output=True, text=True, timeout=120
    )
    cat = subprocess.run([str(shell), "fs", "cat", path], capture_output=True, timeout=120)
    client.delete(path)
    assert checksum.returncode == 0, checksum.stderr
    assert hashlib.md5(payload).hexdigest() in checksum.stdout
    assert cat.stdout == payload


def test_the_written_inventory_loads_in_the_benchmark_format(testbed):
    inventory = load(testbed.inventory)
    assert [n.id for n in inventory.nodes] == [n["id"] for n in testbed.state.nodes]
    assert inventory.settings.proxy.port == testbed.proxy_port
    assert inventory.ssh.strict_host_keys


def _listening(ports: list[int]) -> list[int]:
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    return [p for p in ports if f":{p} " in out]


def test_down_leaves_no_process_and_no_listening_port(testbed, tmp_path):
    """A second, complete testbed on other ports: up, then down, then nothing remains."""
    layout = Layout(tmp_path / "bed")
    layout.root.mkdir()
    layout.jars.symlink_to(testbed.layout.jars)  # reuse the jars the session fetched
    ports = tb_alluxio.Ports(19998 + 100, 19999 + 100, 29999 + 100, 30000 + 100, 39999 + 100)
    state = bed.up(layout, nodes=2, ports=ports)
    pids = bed.status(layout)[1]
    assert len(pids) == 5 and all(pids.values())
    all_ports = [n["port"] for n in state.nodes] + list(state.alluxio.values())
    assert _listening(all_ports) == all_ports
    assert sorted(bed.down(layout)) == sorted(pids)
    assert bed.down(layout) == []  # idempotent
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists()
    assert _listening(all_ports) == []
