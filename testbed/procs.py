"""Start, find and stop the testbed's own processes.

A process is ours only if its pid file says so *and* the process with that pid still has
the start time recorded when we launched it: a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence


class TestbedError(RuntimeError):
    """A testbed step failed; the message says which and why."""

    __test__ = False  # not a pytest test class, despite the name


def _start_ticks(pid: int) -> Optional[int]:
    """Start time of a live ``pid`` in clock ticks since boot (field 22 of /proc/pid/stat);
    None when there is no such process or it has exited (a zombie, which is reaped if it
    is our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces: split after its closing paren
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return int(fields[19])


@dataclass(frozen=True)
class PidFile:
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def record(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "start": _start_ticks(pid)}))

    def live_pid(self) -> Optional[int]:
        """The recorded pid if that very process is still running, else None."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        pid = data.get("pid")
        start = data.get("start")
        alive = isinstance(pid, int) and start is not None and _start_ticks(pid) == start
        return pid if alive else None

    def stop(self, timeout: float = 15.0) -> bool:
        """Terminate the recorded process group (TERM, then KILL); True if one was running."""
        pid = self.live_pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.live_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.live_pid() is not None:
                _signal_group(pid, signal.SIGKILL)
                while self.live_pid() is not None and time.monotonic() < deadline + 5:
                    time.sleep(0.1)
            if self.live_pid() is None:
                # started by this very process (tests): reap it, or it stays a zombie
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        self.path.unlink(missing_ok=True)
        return pid is not None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def spawn(
    name: str, argv: Sequence[str], run_dir: Path, log: Path, env: Optional[dict] = None
) -> int:
    """Start ``argv`` detached in its own session, stdout+stderr to ``log``, pid recorded."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    PidFile(run_dir / f"{name}.pid").record(proc.pid)
    return proc.pid


def pid_files(run_dir: Path) -> list[PidFile]:
    return [PidFile(p) for p in sorted(run_dir.glob("*.pid"))]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_holder(port: int) -> str:
    """Who listens on ``port``, as ``ss`` tells it (best effort, for error messages)."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown process (ss not available)"
    return out.split("users:", 1)[-1] if "users:" in out else (out or "unknown process")


def require_free(port: int, what: str) -> None:
    if port_in_use(port):
        raise TestbedError(
            f"port {port} for {what} is already taken by {port_holder(port)}; "
            "stop that process, or `python -m testbed down` if it is ours"
        )


def free_port_from(start: int, taken: set[int]) -> int:
    """The first port >= ``start`` that is neither in ``taken`` nor bound on loopback."""
    port = start
    while port in taken or port_in_use(port):
        port += 1
    return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def wait_until(
    check,
    timeout: float,
    what: str,
    log: Optional[Path] = None,
    pid_file: Optional[PidFile] = None,
    interval: float = 0.5,
):
    """Poll ``check()`` until it returns a truthy value; fail with the log's tail otherwise."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        if pid_file is not None and pid_file.live_pid() is None:
            last_error = "the process exited"
            break
        time.sleep(interval)
    detail = f"\n--- last lines of {log} ---\n{tail(log)}" if log else ""
    raise TestbedError(f"{what} did not come up within {timeout:.0f} s ({last_error}){detail}")


def which(tool: str, package_hint: str) -> str:
    from shutil import which as _which

    found = _which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if not found:
        raise TestbedError(f"`{tool}` not found: install {package_hint}")
    return found
