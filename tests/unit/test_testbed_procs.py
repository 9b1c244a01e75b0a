"""The testbed's process and port bookkeeping: never kill what it did not start."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from testbed.procs import PidFile, TestbedError, free_port_from, require_free, spawn


def test_a_recycled_pid_is_never_killed(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = PidFile(tmp_path / "x.pid")
        # a stale pid file whose pid now belongs to another process (other start time)
        pid_file.path.write_text(json.dumps({"pid": stranger.pid, "start": 1}))
        assert pid_file.live_pid() is None
        assert pid_file.stop() is False
        assert stranger.poll() is None and not pid_file.path.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_spawned_processes_are_stopped_with_their_group(tmp_path):
    pid = spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(30)"],
        tmp_path,
        tmp_path / "sleeper.log",
    )
    pid_file = PidFile(tmp_path / "sleeper.pid")
    assert pid_file.live_pid() == pid
    assert pid_file.stop() is True
    assert pid_file.live_pid() is None and not pid_file.path.exists()
    assert pid_file.stop() is False  # idempotent


def test_a_taken_port_is_named_with_its_holder():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(TestbedError, match=rf"port {port} for the proxy is already taken"):
            require_free(port, "the proxy")
        assert free_port_from(port, set()) != port
