from __future__ import annotations

from pathlib import Path

import pytest

from controller.inventory import load
from controller.plan import PlanError, new_run_id, read_plan, worker_args, write_paths

INVENTORY = """
defaults: {clients: 2, dst: /bench, data: ref.txt, local_dst: copies}
nodes:
  - {id: a, host: h0, workdir: /w/a}
  - {id: b, host: h1, workdir: /w/b, clients: 3, alluxio_home: /opt/alluxio}
  - {id: c, host: h2, workdir: /w/c, proxy: {host: p2, port: 1234}}
"""


@pytest.fixture
def inventory(tmp_path: Path):
    (tmp_path / "ref.txt").write_text("x")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


def _option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == name]


def test_run_ids_sort_by_time_and_differ():
    first, second = new_run_id(1_000_000_000), new_run_id(1_000_000_001)
    assert first.startswith("20010909T014640Z-") and first < second


def test_write_paths_are_dst_node_client(inventory):
    assert write_paths(inventory, inventory.node("b")) == ["/bench/b/0", "/bench/b/1", "/bench/b/2"]


def test_write_command_of_a_node(inventory):
    args = worker_args(inventory, inventory.node("c"), "write", "r1", common_start=True)
    assert args[0] == "write"
    assert _option(args, "--src") == ["/w/c/data/ref.txt"]
    assert _option(args, "--dst") == ["/bench"]
    assert _option(args, "--node") == ["c"] and _option(args, "--nfile") == ["2"]
    assert _option(args, "--host") == ["p2"] and _option(args, "--port") == ["1234"]
    assert "--start-on-stdin" in args
    assert _option(args, "--out") == ["/w/c/runs/r1/write.jsonl"]


def test_cross_read_sources_follow_the_pairing_and_never_the_own_node(inventory):
    plan = read_plan(inventory)
    for node in inventory.nodes:
        args = worker_args(inventory, node, "read", "r1", read=plan)
        sources = _option(args, "--src")
        assert len(sources) == node.clients
        assert all(not s.startswith(f"/bench/{node.id}/") for s in sources)
        assert _option(args, "--dst") == [f"/w/{node.id}/copies"]
    every = [
        s
        for n in inventory.nodes
        for s in _option(worker_args(inventory, n, "read", "r", read=plan), "--src")
    ]
    assert sorted(every) == sorted(p for n in inventory.nodes for p in write_paths(inventory, n))


def test_same_mode_reads_src_everywhere(inventory):
    plan = read_plan(inventory, "same", "/bench/a/0")
    args = worker_args(inventory, inventory.node("b"), "read", "r1", read=plan)
    assert _option(args, "--src") == ["/bench/a/0"] * 3
    assert plan.to_dict() == {"mode": "same", "src": "/bench/a/0"}


@pytest.mark.parametrize(
    ("mode", "src", "message"),
    [
        ("same", None, "--mode same needs --src"),
        ("same", "rel/path", "absolute"),
        ("cross", "/x", "--src is for --mode same"),
        ("random", None, "--mode must be"),
    ],
)
def test_bad_read_options(inventory, mode, src, message):
    with pytest.raises(PlanError, match=message):
        read_plan(inventory, mode, src)


def test_verify_write_uses_fs_checksum_only_where_alluxio_home_is_set(inventory):
    with_home = worker_args(inventory, inventory.node("b"), "verify-write", "r1")
    without = worker_args(inventory, inventory.node("a"), "verify-write", "r1")
    assert _option(with_home, "--home") == ["/opt/alluxio"]
    assert "--home" not in without
