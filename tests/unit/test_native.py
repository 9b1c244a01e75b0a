"""The native backend: StressClientIOBench's command, its summary JSON, the node's record,
and what the controller makes of it (worker/native.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parbench.controller.analysis.stats import clients_of, summarise
from parbench.controller.output.block import NATIVE_NOTE, phase_block
from parbench.controller.output.report import phase_table
from parbench.controller.run.inventory import InventoryError, load
from parbench.controller.run.plan import ReferenceFacts, node_request
from parbench.worker.clients import Identity, run_clients
from parbench.worker.native import (
    LEAD,
    MAIN_CLASS,
    READ_SECONDS,
    NativeError,
    NativeJob,
    NativeRun,
    parse_summary,
)
from parbench.worker.protocol import (
    BACKENDS,
    PhaseRequest,
    Reference,
    RequestError,
    StorageConfig,
    phase_request,
)
from parbench.worker.results import ClientResult
from parbench.worker.start import NoStart

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: captured from a real run on the testbed (2 nodes, 2 clients each, 5 MiB files; n0's)
WRITE_JSON = FIXTURES / "stressclientio-write-n0.json"
READ_JSON = FIXTURES / "stressclientio-read-n0.json"


def a_run(phase: str = "write", **changes: object) -> NativeRun:
    fields: dict = dict(
        alluxio_home="/opt/alluxio",
        node="n0",
        phase=phase,
        dst="/parbench",
        threads=4,
        file_size=5 << 20,
        buffer_size=1 << 20,
        write_type="MUST_CACHE",
        read_type="NO_CACHE",
        start_ms=1_700_000_000_000,
        duration=None,
    )
    fields.update(changes)
    return NativeRun(**fields)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_native_is_a_backend() -> None:
    assert "native" in BACKENDS


def test_write_command_is_bin_alluxio_runclass_with_the_runs_shape() -> None:
    argv = a_run().argv()
    assert argv[:3] == ["/opt/alluxio/bin/alluxio", "runClass", MAIN_CLASS]
    assert option(argv, "--operation") == "Write"
    assert option(argv, "--base") == "alluxio:///parbench/n0/native"
    assert option(argv, "--id") == "n0"
    assert option(argv, "--threads") == option(argv, "--clients") == "4"
    assert option(argv, "--file-size") == str(5 << 20)
    assert option(argv, "--buffer-size") == str(1 << 20)
    assert option(argv, "--write-type") == "MUST_CACHE"
    assert option(argv, "--read-type") == "NO_CACHE"
    assert option(argv, "--start-ms") == "1700000000000"
    assert option(argv, "--warmup") == "0s"
    assert option(argv, "--client-type") == "AlluxioNative"
    assert "--in-process" in argv and "--duration" not in argv
    assert a_run().files() == [f"/parbench/n0/native/n0/data-{t}" for t in range(4)]


def test_read_command_reads_for_the_duration_or_the_default() -> None:
    argv = a_run("read", duration=2.5).argv()
    assert option(argv, "--operation") == "ReadArray"
    assert option(argv, "--duration") == "2500ms"
    assert option(a_run("read").argv(), "--duration") == f"{int(READ_SECONDS * 1000)}ms"


def test_buffer_is_never_larger_than_the_file() -> None:
    # StressBench refuses a file smaller than its buffer
    assert option(a_run(file_size=1000).argv(), "--buffer-size") == "1000"


def test_parse_a_real_write_summary() -> None:
    found = parse_summary(WRITE_JSON.read_text(), "n0")
    assert (found.bytes, found.threads, found.errors) == (10485760, 2, ())
    assert (found.start, found.end) == (1796309642.676, 1796309643.197)


def test_parse_a_real_read_summary() -> None:
    found = parse_summary(READ_JSON.read_text(), "n0")
    assert (found.bytes, found.threads, found.errors) == (608174080, 2, ())
    assert found.end - found.start == pytest.approx(3.002)


def test_parse_refuses_what_is_no_summary_of_the_node() -> None:
    with pytest.raises(NativeError, match="not JSON"):
        parse_summary("{ broken", "n0")
    with pytest.raises(NativeError, match="no ClientIOSummary"):
        parse_summary("{}", "n0")
    with pytest.raises(NativeError, match="no result for task 'n9'"):
        parse_summary(WRITE_JSON.read_text(), "n9")


def test_parse_keeps_stressbench_errors() -> None:
    data = json.loads(WRITE_JSON.read_text())
    data["nodeResults"]["n0"]["threadCountResults"]["2"]["errors"] = ["java.io.IOException: x"]
    assert parse_summary(json.dumps(data), "n0").errors == ("java.io.IOException: x",)


# --- the job, with a stand-in bin/alluxio (the real one: tests/integration/test_native.py) ----


def fake_home(tmp_path: Path, script: str) -> Path:
    home = tmp_path / "alluxio"
    (home / "bin").mkdir(parents=True)
    tool = home / "bin" / "alluxio"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return home


def a_job(tmp_path: Path, home: Path, phase: str = "write") -> NativeJob:
    identity = Identity("r1", phase, "n0", 0, "h0", "native", "/parbench/n0/native")
    config = StorageConfig("native", alluxio_home=str(home))
    keep = str(tmp_path / "out" / f"{phase}.native")
    return NativeJob(identity, config, "/parbench", 2, 5 << 20, 1 << 20, None, keep)


def test_job_records_the_nodes_figures(tmp_path: Path) -> None:
    home = fake_home(tmp_path, f'echo "$@" > {tmp_path}/args; cat {WRITE_JSON}\n')
    record = a_job(tmp_path, home)(lambda: 1796309632.0)
    assert record.ok, record.error
    assert (record.bytes, record.files, record.threads) == (10485760, 2, 2)
    assert (record.start, record.end) == (1796309642.676, 1796309643.197)
    assert record.latency is None and record.series is None
    args = (tmp_path / "args").read_text().split()
    assert args[args.index("--start-ms") + 1] == str(int((1796309632.0 + LEAD) * 1000))
    assert (tmp_path / "out" / "write.native.json").read_text() == WRITE_JSON.read_text()
    assert ClientResult.from_dict(json.loads(record.to_json())) == record


def test_read_job_counts_whole_files_read(tmp_path: Path) -> None:
    home = fake_home(tmp_path, f"cat {READ_JSON}\n")
    record = a_job(tmp_path, home, "read")(lambda: None)
    assert (record.bytes, record.files) == (608174080, 608174080 // (5 << 20))


def test_jvm_failure_is_one_line_with_command_and_last_stderr_line(tmp_path: Path) -> None:
    home = fake_home(tmp_path, 'echo "starting" >&2; echo "Exception: no master" >&2; exit 3\n')
    record = a_job(tmp_path, home)(lambda: None)
    assert record.status == "error" and record.bytes == 0
    assert record.error is not None and "\n" not in record.error
    assert record.error.startswith("h0: /parbench/n0/native: ")
    assert f"{home}/bin/alluxio runClass {MAIN_CLASS} --operation Write" in record.error
    assert record.error.endswith("exited 3: Exception: no master")


def test_no_json_is_an_error_naming_the_command(tmp_path: Path) -> None:
    home = fake_home(tmp_path, 'echo "no summary here"; echo "last words" >&2\n')
    record = a_job(tmp_path, home)(lambda: None)
    assert record.status == "error"
    assert record.error is not None and "runClass" in record.error
    assert "no ClientIOSummary JSON" in record.error and record.error.endswith("last words")


def test_missing_tool_is_an_error(tmp_path: Path) -> None:
    record = a_job(tmp_path, tmp_path / "nowhere")(lambda: None)
    assert record.status == "error" and "cannot run" in (record.error or "")


# --- the request and the controller ---------------------------------------------------------


def native_request(phase: str = "write", home: str | None = "/opt/alluxio") -> PhaseRequest:
    storage = StorageConfig("native", alluxio_home=home)
    return phase_request(
        "r1",
        "n0",
        phase,
        storage,
        3,
        dst="/parbench",
        local_dst="/w/read",
        out="/w/runs/r1/write.jsonl",
        sources=["/parbench/n1/0", "/parbench/n1/1", "/parbench/n1/2"],
        reference=Reference("/w/data/5mb.txt", 5 << 20, "ab" * 32),
    )


def test_a_native_request_leaves_one_record_and_its_read_knows_the_size() -> None:
    write, read = native_request(), native_request("read")
    assert write.native and write.records == 1
    assert read.records == 1 and read.reference is not None
    assert PhaseRequest.from_json(read.to_json()) == read
    ref = Reference("/w/data/5mb.txt")
    plain = phase_request(
        "r1", "n0", "write", StorageConfig(), 3, dst="/p", local_dst="/w/r", out="/w/o",
        reference=ref,
    )  # fmt: skip
    assert not plain.native and plain.records == 3


def test_a_native_request_needs_alluxio_home() -> None:
    with pytest.raises(RequestError, match="alluxio_home"):
        native_request(home=None)


def test_inventory_refuses_a_node_without_alluxio_home(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "nodes:\n  - {id: n0, host: h0, alluxio_home: /opt/alluxio}\n  - {id: n1, host: h1}\n"
    )
    with pytest.raises(InventoryError) as info:
        load(path, {"backend": "native"})
    message = str(info.value)
    assert "\n" not in message and "nodes[1]" in message and "alluxio_home" in message
    assert "backend native" in message
    inv = load(path)  # the REST proxy's inventory is fine as it is
    assert inv.settings.backend == "alluxio"


def test_controller_asks_native_nodes_with_their_home(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("nodes:\n  - {id: n0, host: h0, alluxio_home: /opt/alluxio}\n")
    inv = load(path, {"backend": "native"})
    facts = ReferenceFacts("/data/5mb.txt", 5 << 20, "ab" * 32)
    request = node_request(inv, inv.nodes[0], "write", "r1", facts)
    assert request.storage.backend == "native"
    assert request.storage.alluxio_home == "/opt/alluxio"
    assert (request.storage.host, request.storage.port) == ("127.0.0.1", 39999)


def native_record(node: str, threads: int, size: int) -> ClientResult:
    return ClientResult(
        "r1", "write", node, 0, "h", "native", f"/p/{node}/native",
        bytes=size, start=100.0, end=101.0, files=threads, threads=threads,
        latency=None, series=None,
    )  # fmt: skip


def test_the_phase_sums_nodes_and_counts_threads_as_clients() -> None:
    records = [native_record("n0", 2, 10 << 20), native_record("n1", 3, 15 << 20)]
    assert clients_of(records) == 5
    summary = summarise(records, "write")
    assert summary.bytes == 25 << 20
    assert summary.aggregate_throughput == pytest.approx(25 << 20)
    block = phase_block(summary.judged({"backend": "native"}, "", {}, ()))
    assert NATIVE_NOTE in block
    assert not any(line.startswith("  per client") for line in block)
    assert any("5 clients" in line for line in block)


def test_the_fixture_is_a_real_stressbench_summary() -> None:
    data = json.loads(WRITE_JSON.read_text())
    assert data["className"] == "alluxio.stress.client.ClientIOSummary"
    assert data["parameters"]["mClientType"] == "ALLUXIO_NATIVE"
    assert os.path.getsize(READ_JSON) > 1000


def test_the_worker_by_hand_refuses_native_with_what_to_do(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo / "parbench"))
    argv = ["write", "--node", "n0", "--clients", "1", "--backend", "native", "--dst", "/p"]
    argv += ["--src", str(WRITE_JSON), "--run-id", "r1"]
    done = subprocess.run(
        [sys.executable, "-m", "worker", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--backend native runs under the controller" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_common_start_runs_nothing(tmp_path: Path) -> None:
    home = fake_home(tmp_path, f"touch {tmp_path}/ran\n")

    def no_start() -> None:
        raise NoStart("the controller gave no common start")

    record = a_job(tmp_path, home)(no_start)
    assert record.status == "error" and "gave no common start" in (record.error or "")
    assert not (tmp_path / "ran").exists()


def test_a_stopped_phase_ends_the_jvm_and_records_why(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    home = fake_home(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60\n")
    began = time.monotonic()
    (record,) = run_clients([a_job(tmp_path, home)], deadline=time.time() + 2.0)
    assert time.monotonic() - began < 20
    assert record.status == "error" and record.threads == 2
    pid = int(pid_file.read_text())
    for _ in range(50):  # the stand-in JVM is gone with its client
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the stand-in JVM {pid} outlived its stopped client")


def test_the_verbose_table_counts_threads_per_node_and_no_client_line() -> None:
    records = [native_record("n0", 2, 10 << 20), native_record("n1", 3, 15 << 20)]
    summary = summarise(records, "write").judged({"backend": "native"}, "", {}, ())
    assert [n.clients for n in summary.per_node] == [2, 3]
    text = phase_table(summary)
    assert "per client MiB/s" not in text and NATIVE_NOTE.strip() in text


def test_a_native_read_request_needs_the_runs_dst() -> None:
    text = native_request("read").to_json().replace('"dst": "/parbench"', '"dst": null')
    with pytest.raises(RequestError, match=r"request\.dst"):
        PhaseRequest.from_json(text)
