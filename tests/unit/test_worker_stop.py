"""A worker stops its clients mid-IO when the controller says so, when the controller's
connection ends, or on SIGTERM: records saved, partial files deleted and said, no client
left, and the exit code tells which."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from parbench.worker.protocol import ExitCode
from parbench.worker.results import read_lines

REPO = Path(__file__).resolve().parents[2]


def _start_writer(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A by-hand worker writing from a FIFO it has read 64 KiB of: its client is mid-IO
    (the partial file exists) and stays so until something stops it."""
    fifo = tmp_path / "ref.fifo"
    os.mkfifo(fifo)
    store = tmp_path / "store"
    store.mkdir()
    out = tmp_path / "write.jsonl"
    argv = [sys.executable, "-m", "worker", "write", "--src", str(fifo), "--dst", "/bench"]
    argv += ["--node", "n0", "--nfile", "1", "--out", str(out), "--run-id", "t1"]
    argv += ["--backend", "posix", "--root", str(store), "--chunk-size", "4096"]
    proc = subprocess.Popen(
        [*argv, "--start-on-stdin"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "parbench")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    feeder = open(fifo, "wb")  # noqa: SIM115 - held open: the client blocks on more
    feeder.write(os.urandom(65536))
    feeder.flush()
    threading.Thread(target=lambda: (time.sleep(30), feeder.close()), daemon=True).start()
    assert proc.stdin and proc.stdout
    assert proc.stdout.readline() == "parbench-ready n0\n"
    proc.stdin.write(f"go {time.time():.6f}\n")
    proc.stdin.flush()
    partial = store / "bench" / "n0" / "0"
    until = time.time() + 10
    while not (partial.exists() and partial.stat().st_size > 0) and time.time() < until:
        time.sleep(0.05)
    assert partial.stat().st_size > 0
    return proc, out, partial


@pytest.mark.parametrize(
    ("how", "code", "why"),
    [
        ("stop", ExitCode.INTERRUPTED, "stopped: the controller was interrupted"),
        ("eof", ExitCode.INTERRUPTED, "stopped: the connection to the controller was lost"),
        ("sigterm", ExitCode.TERMINATED, "stopped: the worker got SIGTERM"),
    ],
)
def test_a_stopped_write_saves_its_record_and_deletes_its_partial_file(tmp_path, how, code, why):
    proc, out, partial = _start_writer(tmp_path)
    asked = time.monotonic()
    assert proc.stdin is not None
    if how == "stop":
        proc.stdin.write("stop\n")
        proc.stdin.flush()
    elif how == "eof":
        proc.stdin.close()
    else:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == code
    # well before the feeder would let the write end (30 s): a bound, not a speed
    assert time.monotonic() - asked < 15
    with open(out) as stream:
        [record] = list(read_lines(stream))
    assert record.status == "error" and why in record.error
    assert "partial file deleted" in record.error and record.bytes > 0
    assert not partial.exists()
    assert why in proc.stderr.read()  # type: ignore[union-attr]
    # a forked client has the worker's command line, which names the FIFO: none is left
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "ref.fifo")], capture_output=True)
    assert left.stdout == b""


def test_a_killed_worker_leaves_no_client_loading_the_storage(tmp_path):
    """SIGKILL gives the worker no chance to stop anyone: its clients see it die (the
    parent-death signal) and stop by themselves, deleting their partial files."""
    proc, _, partial = _start_writer(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    until = time.time() + 10
    left = b"?"
    while time.time() < until:
        left = subprocess.run(
            ["pgrep", "-f", str(tmp_path / "ref.fifo")], capture_output=True
        ).stdout
        if not left and not partial.exists():
            break
        time.sleep(0.1)
    assert left == b"" and not partial.exists()
