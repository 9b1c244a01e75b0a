"""The testbed's Alluxio FUSE pieces that need no mount: reading /proc/mounts, the
inventory's posix_root, and the reason FUSE cannot work (the mount itself:
tests/integration/test_fuse.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from testbed import alluxio, bed, fuse
from testbed.layout import Layout
from testbed.procs import TestbedError


def test_mounted_reads_the_file_system_type_from_proc_mounts(tmp_path: Path) -> None:
    assert fuse.mounted(Path("/proc")) == "proc"
    assert fuse.mounted(tmp_path) is None
    assert fuse.unmount(tmp_path) is False  # nothing mounted: nothing to do
    assert fuse._unescape(r"/a\040b\134c") == "/a b\\c"


def test_the_inventory_points_posix_root_at_the_mount_only_when_mounted(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    nodes = [{"id": f"n{i}", "port": 2200 + i, "workdir": str(tmp_path / f"n{i}")} for i in (0, 1)]
    state = bed.State(nodes=nodes, alluxio={"proxy": 39999}, user="u")
    assert all("posix_root" not in n for n in bed.inventory_dict(layout, state)["nodes"])
    state.fuse = str(layout.fuse)
    doc = bed.inventory_dict(layout, state)
    assert [n["posix_root"] for n in doc["nodes"]] == [str(tmp_path / "fuse")] * 2
    assert "backend" not in doc["defaults"]  # still alluxio: --backend posix runs on the mount


def test_the_site_properties_mount_alluxio_root_with_libfuse_3(tmp_path: Path) -> None:
    text = alluxio.site_properties(Layout(tmp_path), alluxio.Ports())
    assert f"alluxio.fuse.mount.point={tmp_path / 'fuse'}\n" in text
    assert "alluxio.fuse.mount.alluxio.path=/\n" in text
    assert "alluxio.fuse.jnifuse.libfuse.version=3\n" in text


def test_unavailable_is_a_reason_or_none() -> None:
    why = fuse.unavailable()  # here or not: a sentence, never an exception
    assert why is None or (isinstance(why, str) and why)


def test_a_fuse_server_that_exits_fails_start_with_its_log(tmp_path: Path) -> None:
    """A real process in place of the FUSE JVM that prints and exits: start raises at once
    with the log's tail, and leaves nothing mounted or running."""
    why = fuse.unavailable()
    if why:
        pytest.skip(f"Alluxio FUSE cannot work here: {why}")
    layout = Layout(tmp_path)
    script = "echo 'Failed to mount: boom' >&2; exit 3"
    began = time.monotonic()
    with pytest.raises(TestbedError) as caught:
        fuse.start(layout, ["sh", "-c", script], timeout=30)
    assert time.monotonic() - began < 10  # not the whole timeout: the process is gone
    message = str(caught.value)
    assert f"Alluxio FUSE at {layout.fuse} did not come up" in message
    assert "the process exited" in message and "Failed to mount: boom" in message
    assert str(layout.logs / "alluxio-fuse.log") in message
    assert fuse.mounted(layout.fuse) is None
    assert not (layout.run / "alluxio-fuse.pid").exists()
