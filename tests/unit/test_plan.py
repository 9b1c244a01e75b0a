from __future__ import annotations

from pathlib import Path

import pytest

from parbench.controller.run.inventory import load
from parbench.controller.run.plan import (
    PlanError,
    ReferenceFacts,
    new_run_id,
    node_request,
    read_plan,
    write_paths,
)

REF = ReferenceFacts("/ctl/ref.txt", 1, "ab" * 32)

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


def _request(inventory, nid: str, phase: str, read=None):
    return node_request(inventory, inventory.node(nid), phase, "r1", REF, read)


def test_run_ids_sort_by_time_and_differ():
    first, second = new_run_id(1_000_000_000), new_run_id(1_000_000_001)
    assert first.startswith("20010909T014640Z-") and first < second


def test_write_paths_are_dst_node_client(inventory):
    assert write_paths(inventory, inventory.node("b")) == ["/bench/b/0", "/bench/b/1", "/bench/b/2"]


def test_write_request_of_a_node(inventory):
    request = _request(inventory, "c", "write")
    assert (request.phase, request.node, request.run_id) == ("write", "c", "r1")
    assert request.reference is not None
    assert (request.reference.path, request.reference.sha256) == ("/w/c/data/ref.txt", "ab" * 32)
    assert [t.path for t in request.clients] == ["/bench/c/0", "/bench/c/1"]
    assert (request.storage.host, request.storage.port) == ("p2", 1234)
    assert request.start == "stdin" and request.timed
    assert request.out == "/w/c/runs/r1/write.jsonl"


def test_cross_read_sources_follow_the_pairing_and_never_the_own_node(inventory):
    plan = read_plan(inventory)
    every = []
    for node in inventory.nodes:
        request = _request(inventory, node.id, "read", plan)
        sources = [t.path for t in request.clients]
        assert len(sources) == node.clients
        assert all(not s.startswith(f"/bench/{node.id}/") for s in sources)
        assert [t.local_path for t in request.clients] == [
            f"/w/{node.id}/copies/{c}" for c in range(node.clients)
        ]
        every += sources
    assert sorted(every) == sorted(p for n in inventory.nodes for p in write_paths(inventory, n))


def test_same_mode_reads_src_everywhere_with_cid_expanded_on_every_node(inventory):
    plan = read_plan(inventory, "same", "/bench/a/0")
    assert [t.path for t in _request(inventory, "b", "read", plan).clients] == ["/bench/a/0"] * 3
    assert plan.to_dict() == {"mode": "same", "src": "/bench/a/0"}
    templated = read_plan(inventory, "same", "/bench/a/{cid}")
    for nid, count in (("a", 2), ("b", 3)):  # one client or many: the same expansion
        paths = [t.path for t in _request(inventory, nid, "read", templated).clients]
        assert paths == [f"/bench/a/{c}" for c in range(count)]


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


def test_verify_write_reads_back_through_the_benchmarked_proxy(inventory):
    # alluxio_home (node b) no longer sends verify to whatever cluster its conf names
    for nid in ("a", "b"):
        verify, write = _request(inventory, nid, "verify-write"), _request(inventory, nid, "write")
        assert verify.storage == write.storage and verify.storage.backend == "alluxio"


def test_verify_read_checks_the_local_copies(inventory):
    request = _request(inventory, "a", "verify-read")
    assert request.storage.backend == "posix" and request.storage.root == "/"
    assert [t.path for t in request.clients] == ["/w/a/copies/0", "/w/a/copies/1"]
    assert not request.timed and request.start == "now"
