"""The benchmark as a user runs it: ``fab`` in a subprocess, over real SSH, against the
real Alluxio of the testbed. Each test writes below its own ``dst`` so tests don't mix."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import alluxio
import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from parbench.worker import generate
from parbench.worker.results import ClientResult
from testbed import bed
from tests.schemas import junit_schema

from .browser import assert_plots_drawn, open_page
from .fabrun import REPO, edit_inventory, fab, fab_tty, update_node, write_inventory
from .slowlink import SlowLink

pytestmark = pytest.mark.integration

REFERENCE = REPO / "data" / "5mb.txt"


@pytest.fixture(scope="module")
def reference() -> bytes:
    assert REFERENCE.exists(), "run ./get_data.sh (make test does)"
    return REFERENCE.read_bytes()


def _client(testbed) -> alluxio.Client:
    return alluxio.Client("127.0.0.1", testbed.proxy_port)


def _read_alluxio(testbed, path: str) -> bytes:
    with _client(testbed).open(path, "r") as reader:
        return reader.read()


def _records(run: Path, node: str, phase: str) -> list[ClientResult]:
    lines = (run / "nodes" / node / f"{phase}.jsonl").read_text().splitlines()
    return [ClientResult.from_dict(json.loads(line)) for line in lines]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _logins(testbed) -> dict[str, int]:
    """SSH logins each node's sshd has accepted so far (its log says each)."""
    logs = {n["id"]: testbed.layout.logs / f"sshd-{n['id']}.log" for n in testbed.state.nodes}
    return {nid: log.read_text().count("Accepted publickey") for nid, log in logs.items()}


def test_write_read_verify_three_nodes_two_clients(testbed, tmp_path, reference):
    dst = "/it/full"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", dst=dst)
    before = _logins(testbed)
    run = fab(tmp_path, inv, "write", "--verbose", "read", "verify")  # the tables: verbose
    assert run.code == 0, run.text
    assert "verify: all 12 files match the reference" in run.out
    # push, locks, each phase and the locks given back: one SSH connection per node
    after = _logins(testbed)
    assert {n: after[n] - before[n] for n in ("n0", "n1", "n2")} == {"n0": 1, "n1": 1, "n2": 1}

    # in Alluxio: {dst}/{nid}/{cid}, each the reference file
    for nid in ("n0", "n1", "n2"):
        names = sorted(s.name for s in _client(testbed).list_status(f"{dst}/{nid}"))
        assert names == ["0", "1"]
        for cid in names:
            assert _sha(_read_alluxio(testbed, f"{dst}/{nid}/{cid}")) == _sha(reference)
    # on the nodes: {local_dst}/{cid}, copies of the reference
    for node in testbed.state.nodes:
        for cid in (0, 1):
            copy = Path(node["workdir"]) / "read-it-full" / str(cid)
            assert copy.read_bytes() == reference

    # in results/: one run folder, linked as latest, with everything gathered
    results = tmp_path / "results"
    run_dir = (results / "latest").resolve()
    assert run_dir.parent == results and run_dir.is_dir()
    sealed = json.loads((run_dir / "run.json").read_text())
    assert sealed["schema"] == "parbench.run/1"
    assert sealed["reference"]["sha256"] == _sha(reference)
    assert sealed["inventory"]["settings"]["dst"] == dst
    assert sealed["versions"]["alluxio"] == "0.1.4"
    hosts = json.loads((run_dir / "hosts.json").read_text())
    assert set(hosts) == {"schema", "n0", "n1", "n2"}
    sent = json.loads((run_dir / "nodes" / "n1" / "write.request.json").read_text())
    assert sent["clients"] == sealed["requests"]["write"]["n1"]["clients"]
    assert sent["deadline"] is not None and sealed["requests"]["write"]["n1"]["deadline"] is None
    plans = json.loads((run_dir / "plan.json").read_text())
    assert plans["write"]["n2"] == [f"{dst}/n2/0", f"{dst}/n2/1"]
    plan = plans["read"]
    assert len(plan["assignments"]) == 6 and not plan["unread"] and not plan["read_twice"]
    assert all(a["reader"][0] != a["source"][0] for a in plan["assignments"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) == {"schema", "write", "read", "verify-write", "verify-read"}
    assert summary["write"]["bytes"] == summary["read"]["bytes"] == 6 * len(reference)
    assert summary["write"]["aggregate_throughput"] > 0
    for nid in ("n0", "n1", "n2"):
        writes = _records(run_dir, nid, "write")
        assert [r.client for r in writes] == [0, 1]
        assert all(r.ok and r.checksum is None for r in writes)  # verify hashes, below
        reads = _records(run_dir, nid, "read")
        assert all(r.ok and not r.path.startswith(f"{dst}/{nid}/") for r in reads)
        assert all(r.method == "stream" for r in _records(run_dir, nid, "verify-write"))
        # each write record holds the tag Alluxio gives its file: file id and creation time
        statuses = {s.name: s for s in _client(testbed).list_status(f"{dst}/{nid}")}
        for r in writes:
            status = statuses[str(r.client)]
            assert r.made == [f"{status.file_id}.{status.creation_time_ms}"]
    # the page a person opens: every figure drawn in a real browser, offline, no console error
    page_run = fab(tmp_path, inv, "report", "--html")
    assert page_run.code == 0, page_run.text
    assert f"report: {run_dir / 'report.html'}" in page_run.out
    page = open_page(run_dir / "report.html")
    assert_plots_drawn(page, at_least=8)  # write and read: bars, timeline, over time, latency
    assert "every record ok (24), verified" in page.text
    assert "verify-write: all 6 files ok" in page.text
    # the cluster's version, as every node's proxy told it, in the run, the page, the history
    cluster = json.loads((run_dir / "cluster.json").read_text())
    assert cluster["version"] == "alluxio 2.9.6" and set(cluster["nodes"]) == {"n0", "n1", "n2"}
    assert "storage (cluster) alluxio 2.9.6" in page.text
    assert "alluxio 2.9.6" in fab(tmp_path, inv, "history", "--phase", "write").out
    # latency per operation, merged over every client; bytes over time on one grid
    chunks = 6 * -(-len(reference) // (1 << 20))  # 1 MiB chunks of each of 6 files
    write, read = summary["write"], summary["read"]
    assert {op: v["count"] for op, v in write["latency"].items()} == {
        "create": 6,
        "write": chunks,
        "close": 6,
        "file": 6,
    }
    assert {op: v["count"] for op, v in read["latency"].items()} == {
        "open": 6,
        "ttfb": 6,
        "read": chunks,
        "close": 6,
        "file": 6,
    }
    assert 0 < read["latency"]["ttfb"]["p50"] <= read["latency"]["file"]["max"]
    assert all(n["latency"]["file"]["count"] == 2 for n in write["per_node"])
    for phase in (write, read):
        assert phase["series"]["interval"] == 1.0
        assert sum(phase["series"]["bytes"]) == phase["bytes"]
    assert "latency (ms):" in run.out and "MiB/s per 1 s:" in run.out
    # for schedulers and dashboards: OpenMetrics and JUnit, read back by real parsers
    families = {
        f.name: f for f in text_string_to_metric_families((run_dir / "metrics.prom").read_text())
    }
    throughput = families["parbench_throughput_bytes_per_second"].samples
    assert {s.labels["phase"] for s in throughput} == {"write", "read"}
    suites = ET.fromstring((run_dir / "junit.xml").read_text())
    assert [s.get("name") for s in suites] == [
        "parbench.write", "parbench.read", "parbench.verify-write", "parbench.verify-read"
    ]  # fmt: skip
    assert (suites.get("tests"), suites.get("failures")) == ("12", "0")
    # every client waited for the common start: they started within a second of each other
    assert summary["write"]["start_skew"] < 1.0


def test_a_file_overwritten_after_the_write_fails_verify_by_name(testbed, tmp_path, reference):
    """Another writer's file at a run's path, with the same bytes, is not the run's
    (replaced, by no run of this controller); the run's own file whose bytes went bad
    underneath (in the under storage, then freed from Alluxio's cache) is a mismatch."""
    dst = "/it/corrupt"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst=dst)
    assert fab(tmp_path, inv, "write", "read").code == 0
    client = _client(testbed)
    replaced, rotten = f"{dst}/n1/0", f"{dst}/n0/1"
    client.delete(replaced)
    with client.open(replaced, "w") as writer:
        writer.write(reference)  # the same bytes, another file
    ufs = testbed.layout.alluxio_data / "ufs" / rotten.lstrip("/")
    with open(ufs, "r+b") as stored:  # same size, one byte off, under Alluxio
        first = stored.read(1)
        stored.seek(0)
        stored.write(bytes([first[0] ^ 0xFF]))
    client.free(rotten)
    # a free is carried out by the worker at its next heartbeat: wait until it is done
    deadline = time.monotonic() + 30
    while client.get_status(rotten).in_memory_percentage and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get_status(rotten).in_memory_percentage == 0
    grouped = fab(tmp_path, inv, "verify")  # the default level: a line per status
    assert grouped.code == 1, grouped.text
    assert re.search(rf"^  mismatch: 1 file.*e\.g\. n0/1 {rotten}", grouped.out, re.M), grouped.out
    assert re.search(rf"^  replaced: 1 file.*e\.g\. n1/0 {replaced}", grouped.out, re.M)
    run = fab(tmp_path, inv, "verify", "--verbose")  # the table, a row per bad file
    assert run.code == 1, run.text
    assert "verify-write: 2 of 4 files ok, 2 not ok (1 mismatch, 1 replaced)" in run.out
    bad = {line.split()[2]: line for line in run.out.splitlines() if line.startswith("  n")}
    assert " mismatch " in bad[rotten] and "sha256" in bad[rotten]
    assert " replaced " in bad[replaced] and "not the file this run made" in bad[replaced]
    assert f"1 made by no run under results/ (another tool or user): n1:{replaced}" in run.out
    assert "verify-read: all 4 files ok" in run.out


def test_same_file_mode_every_client_reads_one_file(testbed, tmp_path, reference):
    dst = "/it/same"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", dst=dst)
    run = fab(tmp_path, inv, "write", "read", "--mode", "same", "--src", f"{dst}/n2/1", "verify")
    assert run.code == 0, run.text
    run_dir = (tmp_path / "results" / "latest").resolve()
    assert json.loads((run_dir / "plan.json").read_text())["read"] == {
        "mode": "same",
        "src": f"{dst}/n2/1",
    }
    for node in testbed.state.nodes:
        assert {r.path for r in _records(run_dir, node["id"], "read")} == {f"{dst}/n2/1"}


def test_posix_backend_on_a_shared_directory(testbed, tmp_path, reference):
    shared = tmp_path / "shared"  # one directory all nodes see, like an NFS or FUSE mount
    shared.mkdir()
    elsewhere = tmp_path / "mnt-n2"  # n2 mounts it at another place
    elsewhere.symlink_to(shared)
    inv = write_inventory(
        testbed,
        tmp_path / "inv.yaml",
        backend="posix",
        posix_root=str(shared),
        dst="/bench",
        latency=False,  # recording switched off: the records carry none
        series_interval=0,
    )
    update_node(inv, 2, posix_root=str(elsewhere))
    run = fab(tmp_path, inv, "write", "--verbose", "read", "verify")
    assert run.code == 0, run.text
    for nid in ("n0", "n1", "n2"):
        for cid in ("0", "1"):
            assert (shared / "bench" / nid / cid).read_bytes() == reference
    nodes = tmp_path / "results" / "latest" / "nodes"
    sent = {n: json.loads((nodes / n / "write.request.json").read_text()) for n in ("n0", "n2")}
    assert sent["n2"]["storage"]["root"] == str(elsewhere)
    assert sent["n0"]["storage"]["root"] == str(shared)
    assert sent["n0"]["measure"] == {"latency": False, "interval": 0.0}
    summary = json.loads((tmp_path / "results" / "latest" / "summary.json").read_text())
    assert summary["write"]["latency"] == {} and summary["read"]["series"] is None
    assert "latency (ms):" not in run.out


def test_clean_removes_the_files_in_alluxio_and_on_the_nodes(testbed, tmp_path):
    dst = "/it/clean"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst=dst)
    assert fab(tmp_path, inv, "write", "read").code == 0
    run = fab(tmp_path, inv, "clean")
    assert run.code == 0, run.text
    assert _client(testbed).list_status(dst) == []
    for node in testbed.state.nodes[:2]:
        assert not (Path(node["workdir"]) / "read-it-clean").exists()


def test_the_committed_inventory_runs_against_the_testbed(testbed, tmp_path):
    """inventory.yaml as committed, moved to tmp (paths made absolute) and onto the
    testbed's actual ports (2201 and 2202 unless those were taken)."""
    doc = yaml.safe_load((REPO / "inventory.yaml").read_text())
    ports = {node["id"]: node["port"] for node in testbed.state.nodes}
    for node in doc["nodes"]:
        node["port"] = ports[node["id"]]
        node["key"] = str(REPO / node["key"])
    doc["ssh"]["known_hosts"] = str(REPO / doc["ssh"]["known_hosts"])
    doc["defaults"].update(data=str(REPO / doc["defaults"]["data"]), dst="/it/committed")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(doc))
    run = fab(tmp_path, inv, "write", "read", "verify", "report")
    assert run.code == 0, run.text
    # chained, report prints nothing again: each phase's block once
    report = run.out[run.out.index("verify: all 8 files match the reference") :]
    assert "write: " not in report and "aggregate" not in report
    report = fab(tmp_path, inv, "report").out  # on its own, it shows the run again
    assert "write: " in report and "read: " in report and "verify-read: all 4 files ok" in report


def test_clients_start_together_even_when_one_node_is_ready_late(testbed, tmp_path):
    """n1 reaches the proxy through a link that holds every new connection for 2 s, so
    its clients are ready about 2 s after the others'. The start waits for them: the
    ready skew shows the lag, the start skew does not."""
    link = SlowLink(testbed.proxy_port, delay=2.0)
    try:
        inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=3, dst="/it/late")
        update_node(inv, 1, proxy={"host": "127.0.0.1", "port": link.port})
        run = fab(tmp_path, inv, "write")
    finally:
        link.close()
    assert run.code == 0, run.text
    write = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())["write"]
    assert write["ready_skew"] > 1.5
    assert write["start_skew"] < 0.5


def test_unequal_client_counts_read_every_file_once_from_another_node(testbed, tmp_path):
    """1, 2 and 3 clients: no node holds more than half of the 6 files, so each file is
    read exactly once, never by a client of the node that wrote it."""
    dst = "/it/unequal"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=3, dst=dst)
    counts = {"n0": 1, "n1": 2, "n2": 3}
    edit_inventory(inv, lambda doc: [n.update(clients=counts[n["id"]]) for n in doc["nodes"]])
    run = fab(tmp_path, inv, "write", "read", "verify")
    assert run.code == 0, run.text
    run_dir = (tmp_path / "results" / "latest").resolve()
    written = {f"{dst}/{nid}/{cid}" for nid, n in counts.items() for cid in range(n)}
    read = []
    for nid, n in counts.items():
        records = _records(run_dir, nid, "read")
        assert [r.client for r in records] == list(range(n))
        assert all(r.ok and not r.path.startswith(f"{dst}/{nid}/") for r in records)
        read += [r.path for r in records]
        checked = _records(run_dir, nid, "verify-write")
        assert len(checked) == n and all(r.ok for r in checked)
    assert sorted(read) == sorted(written)


def test_the_worker_runs_on_the_oldest_supported_python(testbed, tmp_path):
    """The testbed's last node makes the worker's venv with Python 3.9 when the machine
    has one, so every run through it shows the worker working there."""
    oldest = bed.oldest_python()
    if oldest is None:
        pytest.skip(f"no Python {bed.OLDEST_PYTHON} on this machine")
    inv = write_inventory(testbed, tmp_path / "inv.yaml", dst="/it/oldest")
    run = fab(tmp_path, inv, "write", "read", "verify")
    assert run.code == 0, run.text
    hosts = json.loads((tmp_path / "results" / "latest" / "hosts.json").read_text())
    assert hosts["n2"]["python"].startswith(bed.OLDEST_PYTHON + ".")
    assert hosts["n0"]["python"] != hosts["n2"]["python"]


def test_files_left_by_an_earlier_run_are_replaced_or_refused_as_configured(
    testbed, tmp_path, reference
):
    dst = "/it/existing"
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst=dst)
    assert fab(tmp_path, inv, "write").code == 0
    again = fab(tmp_path, inv, "write")
    assert again.code == 0, again.text
    assert "write: replaced 4 file(s) left by an earlier run" in again.out
    # nothing changed on the nodes since: push copies nothing
    assert "2 nodes pushed: 2 up to date; " in again.out

    edit_inventory(inv, lambda doc: doc["defaults"].update(on_existing="refuse"))
    refused = fab(tmp_path, inv, "write")
    assert refused.code == 1, refused.text
    run_dir = (tmp_path / "results" / "latest").resolve()
    for nid in ("n0", "n1"):
        for record in _records(run_dir, nid, "write"):
            assert record.status == "error" and record.path in record.error
            assert "already exists (--on-existing refuse)" in record.error
            assert _sha(_read_alluxio(testbed, record.path)) == _sha(reference)


def test_iterations_after_a_warmup_and_until_stable(testbed, tmp_path, reference):
    """write repeats until stable (here it cannot be: 0.01 % over 2, at most 2, said
    plainly), after a warm-up; read runs 2 measured iterations; verify checks what the
    last iterations left."""
    inv = write_inventory(
        testbed,
        tmp_path / "inv.yaml",
        nodes=2,
        dst="/it/rounds",
        clients=1,
        warmup=1,
        until_stable=0.0001,
        stable_window=2,
        max_iterations=2,
    )
    run = fab(
        tmp_path, inv, "write", "--verbose", "read", "--iterations", "2", "--warmup", "0", "verify"
    )
    assert run.code == 0, run.text
    assert "write iteration 1 (warm-up, not counted): " in run.out
    assert "read iteration 2 of 2: " in run.out
    assert "write: not stable after 2 iterations (max_iterations)" in run.out
    assert "iterations: 2 measured after 1 warm-up; aggregate MiB/s mean" in run.out
    assert "verify: all 4 files match the reference" in run.out
    run_dir = (tmp_path / "results" / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    write, read = summary["write"], summary["read"]
    assert [i["iteration"] for i in write["iterations"]["warmup"]] == [0]
    assert [i["iteration"] for i in write["iterations"]["measured"]] == [1, 2]
    assert write["iterations"]["verdict"].startswith("not stable after 2 iterations")
    assert write["iterations"]["throughput"]["n"] == 2
    assert write["bytes"] == 2 * 2 * len(reference)  # measured iterations only
    assert read["iterations"]["warmup"] == [] and read["iterations"]["throughput"]["n"] == 2
    assert read["iterations"]["verdict"] == "done"
    writes = _records(run_dir, "n0", "write")
    assert [(r.iteration, r.warmup) for r in writes] == [(0, True), (1, False), (2, False)]
    assert [r.replaced for r in writes][1:] == [True, True]  # its own earlier file


def test_bad_iteration_options_are_refused_before_anything_runs(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=1, dst="/it/badrounds")
    run = fab(tmp_path, inv, "write", "--iterations", "0")
    assert run.code == 2, run.text
    assert "error: --iterations: expected an integer between 1 and 1000, got 0" in run.err
    assert not (tmp_path / "results" / "latest").exists()


def test_reference_data_generated_on_the_nodes(testbed, tmp_path):
    """data: a size: every node makes the same bytes (no transfer), checked against the
    controller's digest; the run seals that digest and verify checks against it."""
    size = 3 * 1024 * 1024 + 5
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, clients=1, dst="/it/generated", data="3145733B"
    )
    run = fab(tmp_path, inv, "write", "read", "verify")
    assert run.code == 0, run.text
    assert "verify: all 4 files match the reference" in run.out
    expected = generate.sha256(size)
    sealed = json.loads(((tmp_path / "results" / "latest") / "run.json").read_text())
    assert sealed["reference"] == {
        "path": f"generated:{size}",
        "bytes": size,
        "sha256": expected,
        "generated": True,
    }
    for node in testbed.state.nodes[:2]:
        made = Path(node["workdir"]) / "data" / f"generated-{size}.bin"
        assert _sha(made.read_bytes()) == expected
    assert _sha(_read_alluxio(testbed, "/it/generated/n1/0")) == expected


def test_labels_config_hash_and_an_invalid_phase(testbed, tmp_path):
    """Labels from the inventory and --label; the same benchmark on another root has the
    same config hash; an iteration shorter than min_phase_seconds marks the phase
    invalid, shown again by fab report."""
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, clients=1, dst="/it/valid")
    edit_inventory(inv, lambda doc: doc.update(labels={"cluster": "testbed", "build": "1"}))
    run = fab(tmp_path, inv, "write", "--label", "build=2", "--label", "night=yes", "--verbose")
    assert run.code == 0, run.text
    first = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())
    write = first["write"]
    assert write["labels"] == {"cluster": "testbed", "build": "2", "night": "yes"}
    assert write["valid"] is True and write["invalid"] == []
    assert write["config"]["clients"] == [1, 1] and len(write["config_hash"]) == 16
    assert f"config {write['config_hash']}, labels build=2 cluster=testbed night=yes" in run.out

    edit_inventory(inv, lambda doc: doc["defaults"].update(dst="/it/valid2", min_phase_seconds=600))
    run = fab(tmp_path, inv, "write")
    assert run.code == 0, run.text  # invalid is said, not failed
    again = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())["write"]
    assert again["config_hash"] == write["config_hash"]
    assert again["valid"] is False
    assert again["invalid"][0].startswith("lasted ")
    assert again["invalid"][0].endswith(" s < min_phase_seconds 600 s")
    assert "INVALID: lasted " in run.out
    shown = fab(tmp_path, inv, "report")
    assert shown.code == 0 and "INVALID: lasted " in shown.out
    trend = fab(tmp_path, inv, "history", "--phase", "write", "--label", "cluster=testbed")
    assert trend.code == 0, trend.text
    rows = [line for line in trend.out.splitlines() if write["config_hash"] in line]
    assert len(rows) == 2 and rows[0].split()[-6:] == [
        "ok",
        "alluxio",
        "2.9.6",
        "build=2",
        "cluster=testbed",
        "night=yes",
    ]
    assert "INVALID" in rows[1]
    compared = fab(tmp_path, inv, "compare", "previous", "latest")
    assert compared.code == 0, compared.text
    assert compared.out.startswith("compare ") and "write  aggregate MiB/s" in compared.out


def test_a_bad_label_is_refused(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=1, dst="/it/badlabel")
    run = fab(tmp_path, inv, "write", "--label", "no-equals")
    assert run.code == 2 and "error: --label: expected KEY=VALUE, got 'no-equals'" in run.err


def test_a_phase_with_a_duration_reads_and_verifies_exactly_what_it_wrote(
    testbed, tmp_path, reference
):
    """write for 1.5 s: each client files one after another ({cid}, {cid}.1, ...); read
    for 1 s goes round the files its source wrote; verify checks every file and copy;
    the report gives first done (stonewall) next to last done."""
    dst = "/it/duration"
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, clients=2, dst=dst, series_interval=0.1
    )
    run = fab(
        tmp_path, inv, "write", "--verbose", "--duration", "1.5s", "read", "--duration", "1s",
        "verify",
    )  # fmt: skip
    assert run.code == 0, run.text
    run_dir = (tmp_path / "results" / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    written = {}
    for nid in ("n0", "n1"):
        records = _records(run_dir, nid, "write")
        names = sorted(s.name for s in _client(testbed).list_status(f"{dst}/{nid}"))
        expected = [str(r.client) + (f".{k}" if k else "") for r in records for k in range(r.files)]
        assert names == sorted(expected)  # exactly the files each client completed
        assert all(r.bytes == r.files * len(reference) for r in records)
        written.update({(nid, r.client): r.files for r in records})
    assert sum(written.values()) > 4 and summary["write"]["files"] == sum(written.values())
    assert summary["write"]["config"]["rounds"]["duration"] == 1.5
    reads = [r for nid in ("n0", "n1") for r in _records(run_dir, nid, "read")]
    assert all(r.ok and r.files >= 1 for r in reads)
    sent = json.loads((run_dir / "nodes" / "n0" / "read.request.json").read_text())
    plan = json.loads((run_dir / "plan.json").read_text())["read"]["assignments"]
    for task in sent["clients"]:  # each reader was told how many files its source left
        source = next(a["source"] for a in plan if a["reader"] == ["n0", task["client"]])
        assert task["files"] == written[tuple(source)]
    copies = sum(
        min(
            r.files,
            written[tuple(next(a["source"] for a in plan if a["reader"] == [r.node, r.client]))],
        )
        for r in reads
    )
    assert f"verify: all {sum(written.values()) + copies} files match the reference" in run.out
    first = summary["write"]["first_done"]
    assert 0 < first["seconds"] <= summary["write"]["wall_seconds"]
    assert "(last done; first done " in run.out


def test_meta_phase_alone_and_after_a_write(testbed, tmp_path):
    """fab meta: every client creates, stats, lists and deletes its files through the
    proxy; ops/s per kind in the summary; chained after write it joins the write's run."""
    dst = "/it/meta"
    client = _client(testbed)
    if client.exists(dst):  # the write below, of an earlier session on the same testbed
        client.delete(dst, alluxio.option.Delete(recursive=True))
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, clients=2, dst=dst, meta_files=12, meta_size=10
    )
    run = fab(tmp_path, inv, "meta", "--verbose")
    assert run.code == 0, run.text
    summary = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())["meta"]
    assert {k: v["count"] for k, v in summary["ops"].items()} == {
        "create": 48,
        "stat": 48,
        "list": 4,
        "delete": 48,
    }
    assert all(v["rate"] > 0 for v in summary["ops"].values())
    assert set(summary["per_node"]) == {"n0", "n1"} and summary["valid"] is True
    assert summary["latency"]["stat"]["count"] == 48
    assert summary["config"]["meta"] == {"files": 12, "size": 10}
    assert "ops/s per node:" in run.out
    assert sorted(s.name for s in _client(testbed).list_status(f"{dst}/n0")) == []  # nothing left

    chained = fab(tmp_path, inv, "write", "meta")
    assert chained.code == 0, chained.text
    both = json.loads(((tmp_path / "results" / "latest") / "summary.json").read_text())
    assert {"write", "meta"} <= set(both)
    assert sorted(s.name for s in _client(testbed).list_status(f"{dst}/n1")) == ["0", "1"]


def test_sweep_runs_every_point_as_a_run_of_its_own(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it/sweep")
    bad = fab(tmp_path, inv, "sweep", "--size", "1MiB", "--clients", "1,0")
    assert bad.code == 2, bad.text
    assert (
        "--size 1MiB --clients 0: " in bad.err
        and "defaults.clients: expected an integer" in bad.err
    )
    assert not (tmp_path / "results" / "sweeps").exists()

    run = fab(
        tmp_path,
        inv,
        "sweep",
        "--size",
        "1MiB,2MiB",
        "--write-type",
        "MUST_CACHE",
        "--steps",
        "write,read",
    )
    assert run.code == 0, run.text
    (doc_path,) = (tmp_path / "results" / "sweeps").glob("sweep-*.json")
    doc = json.loads(doc_path.read_text())
    assert doc["schema"] == "parbench.sweep/2"
    assert [p["values"] for p in doc["points"]] == [
        {"size": "1MiB", "write_type": "MUST_CACHE"},
        {"size": "2MiB", "write_type": "MUST_CACHE"},
    ]
    # a warm-up run first, then 3 rounds, each in its own order from the printed seed
    assert doc["warmup"]["error"] is None and doc["rounds"] == 3
    assert f"seed {doc['seed']}" in run.out and len(doc["orders"]) == 3
    for point, size in zip(doc["points"], (1 << 20, 2 << 20)):
        assert point["error"] is None and [r["round"] for r in point["runs"]] == [1, 2, 3]
        write = point["figures"]["write"]
        rounds = sorted(write["by_round"].values())
        assert write["aggregate_throughput"] == rounds[1] > 0  # the median of the rounds
        assert write["spread"]["low"] == rounds[0] and write["spread"]["high"] == rounds[2]
        assert point["figures"]["read"]["valid"] is True
        for each in point["runs"]:  # every point-round is a sealed run of its own
            sealed = json.loads((tmp_path / "results" / each["run_id"] / "run.json").read_text())
            assert sealed["labels"]["sweep"] == doc["sweep_id"]
            assert sealed["labels"]["round"] == str(each["round"])
            assert sealed["reference"]["bytes"] == size and sealed["reference"]["generated"]
            assert sealed["inventory"]["settings"]["write_type"] == "MUST_CACHE"
    assert f"sweep {doc['sweep_id']}: 2 point(s)" in run.out
    assert f"sweep {doc['sweep_id']}: {doc_path.with_suffix('.html')}" in run.out
    page = open_page(doc_path.with_suffix(".html"))
    assert_plots_drawn(page, at_least=1)
    assert page.figures[0].caption.startswith("aggregate throughput against size")


def test_a_run_slowed_on_purpose_is_caught_as_a_regression(testbed, tmp_path):
    """Six writes straight to the proxy (after four to warm it, left out of the series by
    a label), then three through a link throttled to 1 MB/s (the same benchmark: the
    proxy's address is not part of it): fab check exits 1 naming the metric, the size and
    the first slow run; before that it passed."""
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=1, clients=1, dst="/it/regress", data="1MiB",
        write_type="MUST_CACHE",
    )  # fmt: skip
    for _ in range(4):  # the proxy warms up (JIT): these runs are not part of the series
        assert fab(tmp_path, inv, "write").code == 0
    run_ids = []
    for _ in range(6):
        run = fab(tmp_path, inv, "write", "--label", "series=it")
        assert run.code == 0, run.text
        run_ids.append(os.readlink(tmp_path / "results" / "latest"))
    # one client writing 1 MiB moves by a fifth or more from run to run on a busy 2-core
    # CI machine (a real shift, p < 0.05 over 3 + 3 runs was seen): the check is asked for
    # effects of 60 % or more, which the throttled link (about -98 %) is and noise is not
    strict = ("--min-effect", "0.6")
    calm = fab(tmp_path, inv, "check", "--label", "series=it", *strict)
    assert calm.code == 0 and "check: no regression in 6 run(s)" in calm.out, calm.text
    link = SlowLink(testbed.proxy_port, rate=1_000_000)
    try:
        update_node(inv, 0, proxy={"host": "127.0.0.1", "port": link.port})
        for _ in range(3):
            run = fab(tmp_path, inv, "write", "--label", "series=it")
            assert run.code == 0, run.text
            run_ids.append(os.readlink(tmp_path / "results" / "latest"))
    finally:
        link.close()
    caught = fab(tmp_path, inv, "check", "--label", "series=it", *strict)
    assert caught.code == 1, caught.text
    line = next(x for x in caught.out.splitlines() if x.startswith("REGRESSION write aggregate:"))
    assert f"since run {run_ids[6]}" in line
    # the level before is the fast runs since the last change among them: a proxy still
    # warming up (JIT) can make the later of the six faster, an improvement, not a regression
    before = re.search(r"; (\d+) run\(s\) before, 3 at the new level\)", line)
    assert before is not None and 3 <= int(before.group(1)) <= 6, line
    change = float(line.split(":")[1].split("%")[0])
    assert change < -30
    junit_schema().validate(str(tmp_path / "results" / "latest" / "junit.xml"))
    junit = ET.fromstring((tmp_path / "results" / "latest" / "junit.xml").read_text())
    failure = junit.find("testsuite[@name='parbench.check']/testcase/failure")
    assert failure is not None and failure.text == line
    # the page shows the regression, and the trend with its change point where it began
    assert fab(tmp_path, inv, "report", "--html").code == 0
    page = open_page(tmp_path / "results" / "latest" / "report.html")
    assert_plots_drawn(page, at_least=5)
    assert line in page.text
    trend = page.figures[-1].caption
    assert trend.startswith("write: 9 runs of config"), trend
    # one change point where the slow runs began; more if the proxy was still warming up
    # or the machine's load shifted (the trend shows every change, whatever its size)
    assert re.search(r", series=it; [123] change point\(s\)", trend), trend


def test_the_systemd_units_command_runs_the_nightly_chain(testbed, tmp_path):
    """The service unit's ExecStart, pointed at this checkout and the testbed: the whole
    chain runs, the history and the JUnit/OpenMetrics files are there, exit 0."""
    unit = (REPO / "contrib" / "parbench-nightly.service").read_text()
    command = next(
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")
    )
    workdir = next(
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("WorkingDirectory=")
    )
    assert command.startswith(f"{workdir}/.venv/bin/fab nightly")
    args = command.replace(f"{workdir}/.venv/bin/fab", "").split()
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, clients=1, dst="/it/nightly")
    run = fab(tmp_path, inv, *args)
    assert run.code == 0, run.text
    assert "verify: all 4 files match the reference" in run.out
    assert "check: no regression in 1 run(s)" in run.out
    latest = tmp_path / "results" / "latest"
    assert (latest / "metrics.prom").is_file()
    junit_schema().validate(str(latest / "junit.xml"))
    assert f"nightly: report {latest.resolve() / 'report.html'}" in run.out
    assert_plots_drawn(open_page(latest / "report.html"), at_least=8)
    assert json.loads((latest / "run.json").read_text())["labels"]["trigger"] == "timer"
    assert (tmp_path / "results" / "history.sqlite").is_file()


def test_live_progress_in_place_on_a_terminal_and_never_in_a_log(testbed, tmp_path):
    """At a terminal, the nodes' progress (clients, MiB, files) is drawn and redrawn in
    place; piped (cron), no escape codes and no raw progress lines reach the output."""
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, clients=2, dst="/it/progress", data="1MiB",
        write_type="MUST_CACHE",
    )  # fmt: skip
    run = fab_tty(tmp_path, inv, "write", "--duration", "3s")
    assert run.code == 0, run.out
    drawn = re.findall(
        r"write: (\d)/4 clients done on 2 node\(s\), ([\d.]+) MiB, (\d+) files", run.out
    )
    assert len(drawn) >= 2, run.out  # at least two frames
    assert any(float(mib) > 0 for _, mib, _ in drawn)
    assert "\x1b[" in run.out and "@progress" not in run.out
    assert re.search(r"\n  n0 +\d/2 +clients +[\d.]+ MiB +\d+ files", run.out)
    log = (tmp_path / "results" / "latest" / "nodes" / "n0" / "write.log").read_text()
    assert "@progress" not in log and "n0/0 write /it/progress/n0/0" in log
    piped = fab(tmp_path, inv, "write", "--duration", "2s")
    assert piped.code == 0, piped.text
    assert "@progress" not in piped.text and "\x1b" not in piped.text
