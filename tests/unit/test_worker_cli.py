"""The worker CLI end to end in a subprocess, through the posix backend."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from parbench.worker.__main__ import build_parser, request_from_args
from parbench.worker.protocol import ExitCode, PhaseRequest, told_records
from parbench.worker.results import ClientResult, read_lines
from parbench.worker.storage import local_tag_of

REPO = Path(__file__).resolve().parents[2]


def run_worker(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "parbench"))
    return subprocess.run(
        [sys.executable, "-m", "worker", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def records(path: Path) -> list[ClientResult]:
    with open(path) as stream:
        return sorted(read_lines(stream, str(path)), key=lambda r: r.client)


def one_byte_off(data: bytes) -> bytes:
    """``data`` of the same size with its first byte changed, whatever that byte is."""
    return bytes([data[0] ^ 0xFF]) + data[1:]


def test_a_one_byte_off_copy_always_differs() -> None:
    """The reference is random: its copy must differ whatever its first byte is (b"x" +
    the rest did not, 1 time in 256)."""
    for first in range(256):
        data = bytes([first]) + b"rest of the reference"
        off = one_byte_off(data)
        assert len(off) == len(data) and off != data and off[1:] == data[1:], first


@pytest.fixture
def bench(tmp_path: Path) -> dict:
    ref = tmp_path / "ref.bin"
    ref.write_bytes(os.urandom(300_000))
    store = tmp_path / "store"
    store.mkdir()
    posix = ["--backend", "posix", "--root", store, "--chunk-size", 65536]
    return {
        "tmp": tmp_path,
        "ref": ref,
        "store": store,
        "posix": posix,
        "sha": hashlib.sha256(ref.read_bytes()).hexdigest(),
    }


def write(bench: dict, nfile: int = 3, *extra: object) -> subprocess.CompletedProcess:
    out = bench["tmp"] / "out" / "write.jsonl"
    return run_worker(
        "write",
        "--src",
        bench["ref"],
        "--dst",
        "/parbench",
        "--node",
        "n0",
        "--nfile",
        nfile,
        "--out",
        out,
        "--run-id",
        "t1",
        *bench["posix"],
        *extra,
    )


def test_write_then_verify_write(bench: dict) -> None:
    done = write(bench)
    assert done.returncode == 0, done.stderr
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert [r.client for r in results] == [0, 1, 2]
    for r in results:
        assert (r.status, r.phase, r.node, r.run_id, r.backend) == (
            "ok",
            "write",
            "n0",
            "t1",
            "posix",
        )
        assert r.path == f"/parbench/n0/{r.client}"
        assert r.bytes == 300_000 and r.checksum is None and not r.replaced  # verify hashes
        assert 0 < r.ready <= r.start <= r.end
        assert (bench["store"] / "parbench" / "n0" / str(r.client)).read_bytes() == bench[
            "ref"
        ].read_bytes()
    assert "n0/1 write /parbench/n0/1" in done.stdout and "3/3 ok" in done.stdout

    out = bench["tmp"] / "vw.jsonl"
    done = run_worker(
        "verify-write",
        "--src",
        bench["ref"],
        "--dst",
        "/parbench",
        "--node",
        "n0",
        "--nfile",
        3,
        "--out",
        out,
        *bench["posix"],
    )
    assert done.returncode == 0, done.stderr
    for r in records(out):
        assert (r.status, r.method, r.algorithm) == ("ok", "stream", "sha256")
        assert r.bytes == r.expected_bytes == 300_000
        assert r.checksum == r.expected_checksum == bench["sha"]


def test_replace_and_refuse_existing(bench: dict) -> None:
    assert write(bench, 2).returncode == 0
    done = write(bench, 2)
    assert done.returncode == 0
    assert all(r.replaced and r.ok for r in records(bench["tmp"] / "out" / "write.jsonl"))

    done = write(bench, 3, "--on-existing", "refuse")
    assert done.returncode == 1
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert [r.status for r in results] == ["error", "error", "ok"]
    assert "/parbench/n0/0" in results[0].error and "already exists" in results[0].error
    assert results[0].host in results[0].error
    assert "already exists" in done.stdout  # once, on the client's own line
    assert "already exists" not in done.stderr


def test_read_template_and_explicit_sources_then_verify_read(bench: dict) -> None:
    assert write(bench).returncode == 0
    copies = bench["tmp"] / "copies"
    out = bench["tmp"] / "read.jsonl"
    done = run_worker(
        "read",
        "--src",
        "/parbench/n0/{cid}",
        "--dst",
        copies,
        "--node",
        "n1",
        "--nfile",
        3,
        "--out",
        out,
        *bench["posix"],
    )
    assert done.returncode == 0, done.stderr
    results = records(out)
    assert [r.path for r in results] == [f"/parbench/n0/{cid}" for cid in range(3)]
    assert [r.local_path for r in results] == [str(copies / str(cid)) for cid in range(3)]
    assert all(r.checksum is None and r.bytes == 300_000 for r in results)  # verify hashes
    assert all(Path(r.local_path).read_bytes() == bench["ref"].read_bytes() for r in results)

    explicit = bench["tmp"] / "explicit"
    sources = [arg for cid in (2, 0) for arg in ("--src", f"/parbench/n0/{cid}")]
    done = run_worker(
        "read",
        *sources,
        "--dst",
        explicit,
        "--node",
        "n1",
        "--nfile",
        2,
        "--out",
        out,
        *bench["posix"],
    )
    assert done.returncode == 0, done.stderr
    assert [r.path for r in records(out)] == ["/parbench/n0/2", "/parbench/n0/0"]

    (copies / "1").write_bytes(one_byte_off(bench["ref"].read_bytes()))
    (copies / "2").unlink()
    out = bench["tmp"] / "vr.jsonl"
    done = run_worker(
        "verify-read",
        "--src",
        bench["ref"],
        "--dst",
        copies,
        "--node",
        "n1",
        "--nfile",
        3,
        "--out",
        out,
    )
    assert done.returncode == 1
    statuses = [(r.client, r.status) for r in records(out)]
    assert statuses == [(0, "ok"), (1, "mismatch"), (2, "missing")]
    assert "sha256" in records(out)[1].error
    assert "1 mismatch" in done.stdout and "1 missing" in done.stdout


def test_read_source_count_must_be_one_or_n(bench: dict) -> None:
    done = run_worker(
        "read",
        "--src",
        "/a",
        "--src",
        "/b",
        "--dst",
        bench["tmp"],
        "--node",
        "n1",
        "--nfile",
        3,
        *bench["posix"],
    )
    assert done.returncode == 2
    assert "exactly --clients=3" in done.stderr


def test_usage_errors(bench: dict) -> None:
    assert run_worker().returncode == 2
    assert (
        run_worker(
            "write",
            "--src",
            bench["ref"],
            "--dst",
            "/p",
            "--node",
            "n0",
            "--nfile",
            1,
            "--backend",
            "posix",
        ).returncode
        == 2
    )  # posix without --root
    assert (
        run_worker(
            "write",
            "--src",
            bench["ref"],
            "--dst",
            "/p",
            "--node",
            "n0",
            "--nfile",
            0,
            *bench["posix"],
        ).returncode
        == 2
    )


def test_start_at_is_a_common_start(bench: dict) -> None:
    start_at = time.time() + 1.5
    assert write(bench, 3, "--start-at", f"{start_at:.3f}").returncode == 0
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert all(r.ready < round(start_at, 3) <= r.start for r in results)


def test_unwritable_root_gives_error_records(bench: dict) -> None:
    not_a_dir = bench["tmp"] / "file"
    not_a_dir.write_text("")
    out = bench["tmp"] / "w.jsonl"
    done = run_worker(
        "write",
        "--src",
        bench["ref"],
        "--dst",
        "/parbench",
        "--node",
        "n0",
        "--nfile",
        2,
        "--out",
        out,
        "--backend",
        "posix",
        "--root",
        not_a_dir,
    )
    assert done.returncode == 1
    results = records(out)
    assert [r.status for r in results] == ["error", "error"]
    assert f"posix root {not_a_dir}" in results[0].error
    assert "Traceback" not in done.stderr


def test_missing_reference_gives_error_records(bench: dict) -> None:
    out = bench["tmp"] / "vr.jsonl"
    done = run_worker(
        "verify-read",
        "--src",
        bench["tmp"] / "nope",
        "--dst",
        bench["tmp"],
        "--node",
        "n1",
        "--nfile",
        2,
        "--out",
        out,
    )
    assert done.returncode == 1
    assert [r.status for r in records(out)] == ["error", "error"]
    assert "reference file" in records(out)[0].error


def test_default_out_is_written_atomically_in_cwd(bench: dict) -> None:
    done = run_worker(
        "verify-read",
        "--src",
        bench["ref"],
        "--dst",
        bench["tmp"],
        "--node",
        "n1",
        "--nfile",
        1,
        cwd=bench["tmp"],
    )
    assert done.returncode == 1  # nothing to check there: the copy is missing
    assert [r.status for r in records(bench["tmp"] / "parbench-verify-read.jsonl")] == ["missing"]
    assert not list(bench["tmp"].glob(".parbench-*.tmp"))


def test_records_that_cannot_be_saved_exit_3(bench: dict) -> None:
    out = bench["tmp"] / "a-directory"
    out.mkdir()
    done = write(bench, 2, "--out", out)  # the last --out wins: a directory, not a file
    assert done.returncode == ExitCode.NOT_SAVED == 3, done.stderr
    assert f"cannot save records to {out}" in done.stderr


def test_clean_deletes_only_this_runs_copies(bench: dict) -> None:
    assert write(bench, 2).returncode == 0
    copies = bench["tmp"] / "copies"
    copies.mkdir()
    for name in ("0", "1", "5"):
        (copies / name).write_text("x")
    done = run_worker(
        "clean",
        "--dst",
        "/parbench",
        "--local-dst",
        copies,
        "--node",
        "n0",
        "--nfile",
        2,
        *bench["posix"],
    )
    assert done.returncode == 0, done.stderr
    assert "clean deleted /parbench/n0" in done.stdout
    assert f"clean deleted 2 read copies in {copies}" in done.stdout
    assert sorted(p.name for p in copies.iterdir()) == ["5"]
    assert not (bench["store"] / "parbench" / "n0").exists()


def test_constants_the_controller_imports() -> None:
    from parbench.worker.protocol import BACKENDS, NODE_ID, ON_EXISTING, READ_TYPES, WRITE_TYPES

    assert BACKENDS == ("alluxio", "posix", "s3", "native")
    assert WRITE_TYPES == ("CACHE_THROUGH", "MUST_CACHE", "THROUGH", "ASYNC_THROUGH")
    assert READ_TYPES == ("CACHE", "CACHE_PROMOTE", "NO_CACHE")
    assert ON_EXISTING == ("replace", "refuse")
    assert NODE_ID.pattern == r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def _write_argv(bench: dict, nfile: int, *extra: object) -> list[str]:
    out = bench["tmp"] / "out" / "write.jsonl"
    argv = ["write", "--src", bench["ref"], "--dst", "/parbench", "--node", "n0"]
    argv += ["--nfile", nfile, "--out", out, "--run-id", "t1", *bench["posix"], *extra]
    return [sys.executable, "-m", "worker", *map(str, argv)]


def _on_stdin(bench: dict, nfile: int, **pipes: int) -> subprocess.Popen:
    """The worker waiting for the controller's start on its stdin (a pipe here)."""
    return subprocess.Popen(
        _write_argv(bench, nfile, "--start-on-stdin"),
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO / "parbench")),
        stdin=subprocess.PIPE,
        text=True,
        **pipes,
    )


def test_start_on_stdin_says_ready_then_starts_when_told(bench: dict) -> None:
    """The controller's handshake: a ready line once every client is set up, then the
    clients start at the time of the ``go`` line, not before."""
    proc = _on_stdin(bench, 3, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    assert proc.stdout.readline() == "parbench-ready n0\n"
    told = time.time()
    time.sleep(0.5)  # the clients are held while the controller has not answered
    go = told + 1.0
    proc.stdin.write(f"go {go:.6f}\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert all(r.ready < told and r.start >= round(go, 6) for r in results)


def test_a_start_that_arrives_late_is_said_and_the_clients_begin_at_once(bench: dict) -> None:
    proc = _on_stdin(bench, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    assert proc.stdout.readline() == "parbench-ready n0\n"
    due = time.time() - 2.0  # the controller's margin was too short for this node
    proc.stdin.write(f"go {due:.6f}\n")
    proc.stdin.flush()
    err = _wait_err(proc)
    assert proc.returncode == 0, err
    assert re.search(
        r"n0: the common start arrived 2\d{3}\.\d ms after it was due; its clients begin at "
        r"once \(raise defaults.start_delay\)",
        err,
    ), err
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert all(r.ok and r.start >= due + 2.0 for r in results)


@pytest.mark.parametrize("answer", ["", "start now\n"])
def test_without_a_start_from_the_controller_no_client_starts(bench: dict, answer: str) -> None:
    """The controller gone (end of input: the worker stops, 130) or broken (garbage, the
    input still open: no start, 1): every client gives up before its IO, and its record
    says so."""
    proc = _on_stdin(bench, 2, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(answer)
    proc.stdin.flush()
    if not answer:
        proc.stdin.close()
    try:
        err = _wait_err(proc)
    finally:
        proc.kill()
    if answer:
        assert proc.returncode == 1, err
        assert "no common start from the controller (got 'start now\\n')" in err
    else:
        assert proc.returncode == 130, err
        assert "stopped: the connection to the controller was lost" in err
    results = records(bench["tmp"] / "out" / "write.jsonl")
    assert [r.status for r in results] == ["error", "error"]
    gave_up = ("not started", "the connection to the controller was lost")
    assert all(r.start == 0 and any(w in (r.error or "") for w in gave_up) for r in results)
    assert not list(bench["store"].rglob("*/0"))  # nothing written


def _wait_err(proc: subprocess.Popen) -> str:
    """Wait for ``proc`` with its stdin still open; its stderr."""
    proc.wait(timeout=60)
    assert proc.stderr is not None
    return proc.stderr.read()


@pytest.mark.parametrize("node", ["../x", "a/b", "", "n0\n"])
def test_a_node_id_that_is_not_one_path_segment_is_a_usage_error(bench: dict, node: str) -> None:
    argv = _write_argv(bench, 1)
    argv[argv.index("--node") + 1] = node
    done = subprocess.run(argv, cwd=REPO / "parbench", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--node must be a plain path segment" in done.stderr
    assert not (bench["tmp"] / "out").exists()


def test_a_request_given_inline_is_kept_and_its_records_told_after_saving(bench: dict) -> None:
    """How the controller runs a phase: the request in the command (no sftp), the records
    on stdout once the file holds them (no sftp to fetch them)."""
    argv = [str(a) for a in _write_argv(bench, 2)[3:]]  # after `python -m worker`
    request = replace(request_from_args(build_parser().parse_args(argv)), controlled=True)
    kept = bench["tmp"] / "runs" / "t1" / "write.request.json"
    proc = subprocess.Popen(  # stdin held open, as the controller does
        [sys.executable, "-m", "worker", "run", str(kept), "--json", request.to_json()],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO / "parbench")),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.wait(timeout=60) == 0 and proc.stdout is not None
    assert PhaseRequest.from_json(kept.read_text()) == request
    told = told_records(proc.stdout.read(), "stdout")
    assert sorted(told, key=lambda r: r.client) == records(bench["tmp"] / "out" / "write.jsonl")
    assert len(told) == 2


def test_write_and_read_records_carry_the_tags_of_what_they_made(bench: dict) -> None:
    assert write(bench, 2).returncode == 0
    written = records(bench["tmp"] / "out" / "write.jsonl")
    folder = bench["store"] / "parbench" / "n0"
    assert [r.made for r in written] == [[local_tag_of(str(folder / str(c)))] for c in (0, 1)]
    copies, out = bench["tmp"] / "copies", bench["tmp"] / "read.jsonl"
    done = run_worker(
        "read", "--src", "/parbench/n0/{cid}", "--dst", copies, "--node", "n1", "--nfile", 2,
        "--out", out, *bench["posix"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r.made for r in records(out)] == [[local_tag_of(str(copies / str(c)))] for c in (0, 1)]
    assert write(bench, 2).returncode == 0  # a later write makes other files at the same paths
    again = records(bench["tmp"] / "out" / "write.jsonl")
    assert all(new.made != old.made for new, old in zip(again, written))
