"""The native backend on the real testbed: Alluxio's StressClientIOBench run by each node's
worker through ``{alluxio_home}/bin/alluxio runClass`` (the testbed's wrapper runs the real
class from the 2.9.6 jars), behind the run's common start, its figures in the run."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from .fabrun import fab, update_node, write_inventory

pytestmark = pytest.mark.integration


def test_write_read_native_from_both_nodes(testbed, tmp_path: Path) -> None:
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/native")
    run = fab(
        tmp_path, inv, "write", "--backend", "native", "--duration", "2", "read", "--duration", "2"
    )
    assert run.code == 0, run.text
    assert "native: Alluxio's StressClientIOBench" in run.out
    assert "once: it cannot write for a time (the duration is the read's)" in run.out
    assert "native read: on each node" in run.out
    # the write wrote once (no "for 2 s each"), the read read for its duration
    assert "write: 2 nodes, 4 clients, 5.00 MiB files through native; 4 files, 20.0 MiB" in run.out
    assert "read: 2 nodes, 4 clients, 5.00 MiB files through native, for 2.00 s each;" in run.out
    summary = json.loads((tmp_path / "results" / "latest" / "summary.json").read_text())
    for phase in ("write", "read"):
        block = summary[phase]
        assert block["config"]["backend"] == "native"
        assert block["clients"] == 4 and block["aggregate_throughput"] > 0
        by_node = {c["node"]: c for c in block["by_client"]}
        assert set(by_node) == {"n0", "n1"}, block["by_client"]
        assert all(c["status"] == "ok" and c["bytes"] > 0 for c in by_node.values())
        assert block["bytes"] == sum(c["bytes"] for c in by_node.values())
    assert summary["write"]["bytes"] == 4 * 5 * 1024 * 1024
    assert summary["read"]["histograms"] == {}  # StressBench measures no latency
    # StressBench's own JSON is kept on the node beside the records
    kept = list(Path(testbed.layout.nodes).glob("n0/work/runs/*/write.native.json"))
    assert kept and '"className" : "alluxio.stress.client.ClientIOSummary"' in kept[-1].read_text()
    # verify cannot check StressBench's content: said, never a pass
    check = fab(tmp_path, inv, "verify")
    assert check.code == 2, check.text
    assert "cannot be verified against the reference" in check.text
    same = fab(tmp_path, inv, "read", "--mode", "same", "--src", "/it/native/n0/native/n0/data-0")
    assert same.code == 2 and "a native read reads the files" in same.text, same.text


def test_on_existing_refuse_is_refused_for_native(testbed, tmp_path: Path) -> None:
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/native-refuse")
    run = fab(tmp_path, inv, "write", "--backend", "native", "--on-existing", "refuse")
    assert run.code == 2, run.text
    assert "a native write cannot keep it" in run.err and "[n0]" not in run.out


def test_a_node_without_alluxio_home_is_refused_up_front(testbed, tmp_path: Path) -> None:
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/native-home")
    update_node(inv, 1, alluxio_home=None)
    run = fab(tmp_path, inv, "write", "--backend", "native")
    assert run.code == 2, run.text
    lines = [line for line in run.err.splitlines() if "alluxio_home" in line]
    assert len(lines) == 1 and "nodes[1]" in lines[0] and "backend native" in lines[0], run.err
    assert not (tmp_path / "results" / "latest").exists()


def test_a_failing_jvm_is_one_line_naming_node_command_and_stderr(testbed, tmp_path) -> None:
    home = tmp_path / "broken-alluxio"
    (home / "bin").mkdir(parents=True)
    tool = home / "bin" / "alluxio"
    tool.write_text(
        "#!/bin/sh\necho 'log line' >&2\necho 'Exception: no master here' >&2\nexit 1\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/native-broken")
    update_node(inv, 1, alluxio_home=str(home))
    run = fab(tmp_path, inv, "write", "--backend", "native")
    assert run.code == 1, run.text
    said = [line for line in run.text.splitlines() if "Exception: no master here" in line]
    assert said, run.text
    assert any("n1" in line and f"{home}/bin/alluxio runClass" in line for line in said), said
