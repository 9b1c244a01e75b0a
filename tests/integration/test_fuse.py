"""The posix backend on a real Alluxio FUSE mount (the testbed's ``up --fuse``): the bytes a
run writes through the mount are files in Alluxio, seen through the REST proxy."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import alluxio
import alluxio.exceptions
import pytest
import yaml

from testbed import bed, fuse

from .fabrun import REPO, fab, write_inventory

pytestmark = pytest.mark.integration

REFERENCE = REPO / "data" / "5mb.txt"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_in_alluxio(client: alluxio.Client, path: str, timeout: float = 15.0) -> bytes:
    """``path`` read through the REST proxy once Alluxio has it complete: close(2) (and
    fsync) on the mount return before Alluxio FUSE completes the file, as the kernel sends
    FUSE's RELEASE without waiting for it (seen: 40-120 ms later on the testbed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with client.open(path, "r") as reader:
                return reader.read()
        except alluxio.exceptions.AlluxioError as exc:
            if "incomplete" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_posix_backend_through_alluxio_fuse_writes_into_alluxio(fuse_testbed, tmp_path):
    reference = REFERENCE.read_bytes()
    layout = fuse_testbed.layout
    assert fuse.mounted(layout.fuse) == fuse.FS_TYPE  # a FUSE mount, not a local directory
    dst = "/it/fuse"
    inv = write_inventory(fuse_testbed, tmp_path / "inv.yaml", nodes=2, dst=dst)
    nodes = yaml.safe_load(inv.read_text())["nodes"]
    assert {n["posix_root"] for n in nodes} == {str(layout.fuse)}  # from the testbed's inventory
    run = fab(tmp_path, inv, "write", "--backend", "posix", "--verbose", "read", "verify")
    assert run.code == 0, run.text
    assert "verify: all 8 files match the reference" in run.out
    request = tmp_path / "results" / "latest" / "nodes" / "n0" / "write.request.json"
    storage = json.loads(request.read_text())["storage"]
    assert (storage["backend"], storage["root"]) == ("posix", str(layout.fuse))
    # in Alluxio, asked through its REST proxy: {dst}/{nid}/{cid}, each the reference
    client = alluxio.Client("127.0.0.1", fuse_testbed.proxy_port)
    for nid in ("n0", "n1"):
        assert sorted(s.name for s in client.list_status(f"{dst}/{nid}")) == ["0", "1"]
        for cid in ("0", "1"):
            data = _read_in_alluxio(client, f"{dst}/{nid}/{cid}")
            assert _sha(data) == _sha(reference), f"{dst}/{nid}/{cid}"
    # the nodes' read copies (read through the mount) are the reference too
    for node in fuse_testbed.state.nodes[:2]:
        for cid in ("0", "1"):
            copy = Path(node["workdir"]) / "read-it-fuse" / cid
            assert _sha(copy.read_bytes()) == _sha(reference), copy


def _testbed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "testbed", *args], cwd=REPO, capture_output=True, text=True
    )


def test_a_crashed_fuse_mount_is_cleaned_and_mounted_again(fuse_testbed):
    """The FUSE JVM killed leaves a dead mount ("Transport endpoint is not connected"):
    ``status`` says the JVM is gone, and ``fuse up`` unmounts it and mounts anew."""
    layout = fuse_testbed.layout
    status = _testbed("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"alluxio fuse     {layout.fuse} ({fuse.FS_TYPE})" in status.stdout
    pid = bed.PidFile(layout.run / f"{fuse.NAME}.pid").live_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(OSError):  # ENOTCONN: the kernel's mount is left without its server
        os.listdir(layout.fuse)
    assert fuse.mounted(layout.fuse) is not None
    assert _testbed("status").returncode == 1
    again = _testbed("fuse", "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert fuse.mounted(layout.fuse) == fuse.FS_TYPE
    (layout.fuse / "it-fuse-again").write_bytes(b"through the new mount")
    client = alluxio.Client("127.0.0.1", fuse_testbed.proxy_port)
    assert _read_in_alluxio(client, "/it-fuse-again") == b"through the new mount"
    client.delete("/it-fuse-again")
