"""The sealed run: what it records, how a later command reopens it, and what today's
inventory may and may not change."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Optional

import pytest

from parbench.controller.run.inventory import load
from parbench.controller.run.run import Run, RunMismatch, differences
from parbench.controller.run.rundir import ResultsError, RunDir
from parbench.controller.run.seal import RunAltered

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


# --- a run.json changed after the run started ----------------------------------------------


def _tamper(run: Run, edit) -> None:
    path = run.path / "run.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _set(phase: str, node: str, key: str, value, client: Optional[int] = None):
    def edit(doc: dict) -> None:
        request = doc["requests"][phase][node]
        (request if client is None else request["clients"][client])[key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # a read copy onto a file the SSH user can write
        (
            _set("read", "b", "local_path", "/home/u/.ssh/authorized_keys", client=0),
            "requests.read.b.clients[0].local_path",
        ),
        (
            _set("verify-read", "a", "path", "/home/u/.ssh/authorized_keys", client=1),
            "requests.verify-read.a.clients[1].path",
        ),
        # the records file
        (_set("write", "a", "out", "/home/u/.bashrc"), "requests.write.a.out"),
        (_set("read", "b", "out", "/w/b/runs/../../../etc/x"), "requests.read.b.out"),
        # what fab meta creates and deletes
        (_set("meta", "b", "dst", "/precious"), "requests.meta.b.dst"),
        (_set("meta", "a", "path", "/precious/tree", client=0), "requests.meta.a.clients[0].path"),
        (_set("read", "a", "local_dst", "/home/u/.ssh"), "requests.read.a.local_dst"),
        (_set("write", "b", "run_id", "20200101T000000Z-0000"), "requests.write.b.run_id"),
    ],
)
def test_a_tampered_sealed_request_refuses_the_run(
    sealed: Run, tmp_path: Path, edit, named
) -> None:
    assert "start a new run" in _refusal(sealed, tmp_path, edit, named)


def _refusal(sealed: Run, tmp_path: Path, edit, named: str) -> str:
    """The one-line refusal of opening ``sealed`` once ``edit`` changed its run.json."""
    _tamper(sealed, edit)
    with pytest.raises(RunAltered) as info:
        Run.open(tmp_path / "results", sealed.run_id)
    message = str(info.value)
    assert f"run {sealed.run_id}" in message and named in message, message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # sealed requests and inventory changed alike: the inventory is checked too
        (
            lambda doc: doc["inventory"]["settings"].update(local_dst="../../home/u/.ssh"),
            "inventory: defaults.local_dst: expected a path without '..'",
        ),
        (
            lambda doc: doc["inventory"]["nodes"][0].update(workdir="/w/a/../../etc"),
            "nodes[0].workdir",
        ),
        (lambda doc: doc["inventory"]["nodes"][0].update(id="../x"), "nodes[0].id"),
        # who reads what: another node's files only
        (
            lambda doc: doc["read_plan"]["assignments"][0].update(source=["../../etc", 0]),
            "read_plan",
        ),
        (lambda doc: doc["requests"].pop("write"), "requests.write: missing"),
        (lambda doc: doc["requests"]["write"].pop("b"), "requests.write: nodes a in run.json"),
        (lambda doc: doc["requests"].update(clean=doc["requests"]["write"]), "requests.clean"),
        (lambda doc: doc["reference"].update(path="/etc/.."), "reference.path"),
    ],
)
def test_a_tampered_sealed_inventory_or_plan_refuses_the_run(
    sealed: Run, tmp_path: Path, edit, named
) -> None:
    _refusal(sealed, tmp_path, edit, named)


def test_an_altered_run_is_bad_input_exit_2(sealed: Run, tmp_path: Path) -> None:
    from invoke import Exit

    from parbench import tasks as fabfile

    _tamper(sealed, _set("write", "a", "out", "/home/u/.bashrc"))
    with pytest.raises(Exit) as info, fabfile._exits():
        Run.open(tmp_path / "results", sealed.run_id)
    assert info.value.code == 2 and "requests.write.a.out" in str(info.value.message)


def test_an_untouched_run_of_generated_data_opens(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, INVENTORY.replace("data: ref.txt", "data: 1MiB"))
    run = Run.start(inventory, tmp_path / "results")
    again = Run.open(tmp_path / "results", run.run_id)
    assert again.requests == run.requests and again.inventory == run.inventory
    single = _inventory(tmp_path, INVENTORY.split("  - {id: b")[0], "one.yaml")
    one = Run.start(single, tmp_path / "results")
    assert Run.open(tmp_path / "results", one.run_id).read_plan is None


def test_a_run_sealed_before_the_ssh_opt_ins_opens(sealed: Run, tmp_path: Path) -> None:
    def older(doc: dict) -> None:
        for key in ("forward_agent", "ssh_config_keys"):
            doc["inventory"]["ssh"].pop(key)

    _tamper(sealed, older)
    again = Run.open(tmp_path / "results", sealed.run_id)
    assert (again.inventory.ssh.forward_agent, again.inventory.ssh.ssh_config_keys) == (
        False,
        False,
    )


RICH = """
defaults:
  clients: 3
  backend: posix
  posix_root: /mnt/shared
  dst: /bench/x
  local_dst: /scratch/copies
  data: 2MiB
  chunk_size: 64KiB
  start_delay: 0.5
  duration: 2m
  until_stable: 0.05
  series_interval: 0
  meta_size: 4KiB
  write_type: THROUGH
labels: {cluster: east, build: 7}
ssh: {known_hosts: null, strict_host_keys: false, forward_agent: true}
nodes:
  - {id: a, host: 10.0.0.1, user: u1, key: ~/k, workdir: /w, clients: 1, python: python3.11}
  - {id: b, host: 10.0.0.2, port: 2222, posix_root: /mnt/b, alluxio_home: /opt/alluxio,
     proxy: {host: p}}
  - {id: c, host: '::1', workdir: /x/y}
"""


def test_every_kind_of_valid_inventory_opens_as_sealed(tmp_path: Path) -> None:
    run = Run.start(_inventory(tmp_path, RICH), tmp_path / "results")
    again = Run.open(tmp_path / "results", run.run_id)
    assert again.requests == run.requests and again.inventory == run.inventory
    assert again.read_plan == run.read_plan


def test_a_run_sealed_when_verify_asked_fs_checksum_opens(sealed: Run, tmp_path: Path) -> None:
    """Requests sealed with ``alluxio_home`` (an earlier parbench) open: the field retired."""

    def older(doc: dict) -> None:
        for by_node in doc["requests"].values():
            for request in by_node.values():
                request["alluxio_home"] = (
                    "/opt/alluxio" if request["phase"] == "verify-write" else None
                )

    _tamper(sealed, older)
    assert Run.open(tmp_path / "results", sealed.run_id).requests == sealed.requests
