"""The sealed run: what it records, how a later command reopens it, and what today's
inventory may and may not change."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from controller.inventory import load
from controller.run import Run, RunMismatch, differences
from controller.rundir import ResultsError, RunDir

INVENTORY = """
defaults: {clients: 2, dst: /odd topo/run, data: ref.txt, local_dst: copies}
nodes:
  - {id: a, host: h0, workdir: /w/a, key: ka}
  - {id: b, host: h1, workdir: /w/b, clients: 3}
"""


def _inventory(folder: Path, text: str = INVENTORY, name: str = "inv.yaml"):
    (folder / "ref.txt").write_bytes(b"reference bytes")
    (folder / name).write_text(text)
    return load(folder / name)


@pytest.fixture
def sealed(tmp_path: Path) -> Run:
    return Run.start(_inventory(tmp_path), tmp_path / "results")


def test_a_run_records_everything_that_defines_it(sealed: Run, tmp_path: Path) -> None:
    doc = json.loads((sealed.path / "run.json").read_text())
    assert doc["schema"] == "parbench.run/1" and doc["run_id"] == sealed.run_id
    assert doc["reference"]["bytes"] == len(b"reference bytes")
    assert set(doc["requests"]) == {"write", "read", "verify-write", "verify-read", "meta"}
    assert doc["requests"]["write"]["b"]["clients"][2]["path"] == "/odd topo/run/b/2"
    assert doc["inventory"]["settings"]["dst"] == "/odd topo/run"
    assert json.loads((sealed.path / "plan.json").read_text())["schema"] == "parbench.plan/1"


def test_a_reopened_run_sends_the_sealed_requests(sealed: Run, tmp_path: Path) -> None:
    again = Run.open(tmp_path / "results", sealed.run_id)
    assert again.requests == sealed.requests
    assert again.inventory == sealed.inventory
    assert again.reference == sealed.reference


def test_todays_dst_differs_so_the_run_is_refused_naming_it(sealed: Run, tmp_path: Path) -> None:
    today = _inventory(tmp_path, INVENTORY.replace("/odd topo/run", "/elsewhere"), "now.yaml")
    with pytest.raises(RunMismatch) as info:
        Run.open(tmp_path / "results", sealed.run_id).reconciled(today)
    message = str(info.value)
    assert "defaults.dst: '/odd topo/run' in the run, '/elsewhere' now" in message
    assert "--from-run" in message


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("clients: 3}", "clients: 4}"), "nodes[b].clients: 3 in the run, 4 now"),
        (("workdir: /w/a", "workdir: /w/z"), "nodes[a].workdir"),
        (("clients: 2, dst", "clients: 2, read_type: NO_CACHE, dst"), "defaults.read_type"),
        (
            ("  - {id: b, host: h1, workdir: /w/b, clients: 3}\n", ""),
            "nodes: a, b in the run, a now",
        ),
        (("local_dst: copies", "local_dst: other"), "defaults.local_dst"),
    ],
)
def test_what_defines_the_run_may_not_change(tmp_path: Path, change, named) -> None:
    run_inv = _inventory(tmp_path)
    today = _inventory(tmp_path, INVENTORY.replace(*change), "now.yaml")
    assert any(named in d for d in differences(run_inv, today)), differences(run_inv, today)


def test_how_nodes_are_reached_comes_from_today(sealed: Run, tmp_path: Path) -> None:
    text = INVENTORY.replace("key: ka", "key: kb, user: someone, port: 2222").replace(
        "defaults: {", "defaults: {connect_timeout: 3, "
    )
    today = _inventory(tmp_path, text, "now.yaml")
    reached = sealed.reconciled(today)
    node = reached.inventory.node("a")
    assert (node.key, node.user, node.port) == (tmp_path / "kb", "someone", 2222)
    assert reached.inventory.settings.connect_timeout == 3
    assert reached.inventory.settings.dst == "/odd topo/run"
    assert reached.requests == sealed.requests


def test_a_changed_reference_file_is_refused(sealed: Run, tmp_path: Path) -> None:
    today = load(tmp_path / "inv.yaml")
    (tmp_path / "ref.txt").write_bytes(b"other bytes")
    with pytest.raises(RunMismatch, match="ref.txt changed since the run"):
        sealed.reconciled(today)


def test_without_todays_inventory_the_run_is_its_own(sealed: Run) -> None:
    assert sealed.reconciled(None) is sealed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda doc: doc.update(schema="parbench.run/0"), "schema 'parbench.run/0'"),
        (lambda doc: doc["requests"]["write"]["a"].update(phase="dance"), "requests.write.a"),
        (lambda doc: doc.pop("inventory"), "not a run this parbench can read"),
    ],
)
def test_a_damaged_run_file_is_named(sealed: Run, tmp_path: Path, edit, message) -> None:
    path = sealed.path / "run.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=message):
        Run.open(tmp_path / "results", sealed.run_id)


def test_a_run_folder_without_run_json_says_so(tmp_path: Path) -> None:
    RunDir.create(tmp_path / "results", "20260101T000000Z-0000")
    with pytest.raises(ResultsError, match="run.json is missing"):
        Run.open(tmp_path / "results", "20260101T000000Z-0000")


def _update_many(root: str, run_id: str, prefix: str) -> None:
    run = RunDir(Path(root), run_id)
    for i in range(40):
        run.update_doc("summary.json", {f"{prefix}{i}": i})


def test_concurrent_updates_of_one_document_lose_nothing(sealed: Run) -> None:
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_update_many, args=(str(sealed.dir.root), sealed.run_id, p))
        for p in "abc"
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert all(proc.exitcode == 0 for proc in procs)
    summary = sealed.dir.read_doc("summary.json")
    assert len(summary) == 120
    assert not list(sealed.path.glob("*.tmp")) and not list(sealed.path.glob(".*.tmp"))
