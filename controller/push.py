"""Bring every node up to date: work dir, worker package, reference data, runtime.

Only what changed is copied (sha256 compared on the node), so ``write``, ``read`` and
``verify`` call this first at little cost. The runtime is a venv with ``alluxio==0.1.4``
unpacked from pure-Python wheels that the controller downloaded, so nodes need Python 3.9+
and nothing from the internet.

A node's workdir is parbench's alone: push claims a new or empty one with a marker file and
refuses one that holds anything else (worker/probe.py checks), since it deletes in there.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from fabric import Connection
from invoke.exceptions import UnexpectedExit

from worker.hashing import hash_file
from worker.probe import MARKER, REFUSED

from .inventory import Inventory, Node
from .remote import StepError

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "worker"
PROBE = WORKER / "probe.py"
WHEEL_CACHE = REPO / ".cache" / "wheels"
RUNTIME_REQUIREMENT = "alluxio==0.1.4"
MIN_PYTHON = (3, 9)


class PushError(RuntimeError):
    """The inventory's reference data file is missing (bad input)."""


class RuntimeUnavailable(RuntimeError):
    """The worker's runtime (the storage client's wheels) could not be downloaded."""


@dataclass(frozen=True)
class Artifact:
    local: Path
    remote: str  # relative to the node's workdir
    sha256: str


def ensure_wheels(cache: Path = WHEEL_CACHE, requirement: str = RUNTIME_REQUIREMENT) -> list[Path]:
    """Pure-Python wheels of ``requirement`` for Python 3.9+, downloaded once.

    The marker records the requirement: when it differs, the cache's wheels are deleted and
    downloaded again, so the cache never holds two versions of a package.
    """
    marker = cache / ".complete"
    if not marker.is_file() or marker.read_text().strip() != requirement:
        marker.unlink(missing_ok=True)
        for old in cache.glob("*.whl"):
            old.unlink()
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            "3.9",
            "--implementation",
            "py",
            "--abi",
            "none",
            "--platform",
            "any",
            "-d",
            str(cache),
            requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeUnavailable(
                f"could not download the worker runtime ({requirement}) "
                f"into {cache}: {proc.stderr.strip()[-500:]}"
            )
        marker.write_text(requirement)
    return sorted(cache.glob("*.whl"))


def reference_file(inventory: Inventory) -> Path:
    """The reference data file, which must exist before anything starts."""
    data = inventory.settings.data
    if not data.is_file():
        raise PushError(
            f"{inventory.path.name}: defaults.data: reference file {data} does not "
            "exist; make it with ./get_data.sh"
        )
    return data


def artifacts(inventory: Inventory, wheels: list[Path], data: bool = True) -> list[Artifact]:
    """What a node needs: the worker package, the runtime's wheels and (``data``) the
    reference file."""
    files = [(p, f"worker/{p.name}") for p in sorted(WORKER.glob("*.py"))]
    files += [(w, f"wheels/{w.name}") for w in wheels]
    if data:
        reference = reference_file(inventory)
        files.append((reference, f"data/{reference.name}"))
    return [Artifact(local, remote, hash_file(str(local))) for local, remote in files]


def _wheels(arts: list[Artifact]) -> list[Artifact]:
    return [a for a in arts if a.remote.startswith("wheels/")]


def runtime_stamp(arts: list[Artifact], python: str) -> str:
    wheels = sorted(a.sha256 for a in _wheels(arts))
    return hashlib.sha256(json.dumps([python, wheels]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class NodeInfo:
    """What ``push`` learnt about a node; saved in the run's manifest."""

    hostname: str
    platform: str
    python: str
    clock_offset: float  # node clock minus controller clock, seconds
    clock_error: float  # half the round trip of the best sample: the offset's uncertainty
    uploaded: int
    provisioned: bool

    def to_dict(self) -> dict:
        return asdict(self)


#: answers each line on stdin with the node's clock: one exec, then pure round trips
CLOCK_ECHO = "import sys, time\nfor _ in sys.stdin: print(repr(time.time()), flush=True)"


def measure_clock(conn: Connection, python: str, samples: int = 5) -> tuple[float, float]:
    """(offset, uncertainty): node clock minus ours, NTP-style over one open channel.

    The channel is set up before the first sample, so the round trips are symmetric; the
    sample with the shortest round trip wins and half of it bounds the error.
    """
    channel = conn.client.get_transport().open_session()
    try:
        channel.settimeout(30)
        channel.exec_command(f"{shlex.quote(python)} -u -c {shlex.quote(CLOCK_ECHO)}")
        replies = channel.makefile("r")
        best: Optional[tuple[float, float]] = None
        for _ in range(samples):
            before = time.time()
            channel.sendall(b"\n")
            remote = float(replies.readline())
            half = (time.time() - before) / 2
            if best is None or half < best[1]:
                best = (remote - (before + half), half)
        assert best is not None
        return best
    finally:
        channel.close()


def push_node(conn: Connection, node: Node, inventory: Inventory, arts: list[Artifact]) -> NodeInfo:
    workdir = node.workdir
    q = shlex.quote
    names = " ".join(q(a.remote) for a in arts)
    # the source as an argument: invoke feeds a stdin stream one byte per 10 ms
    try:
        probe = conn.run(
            f"{q(node.python)} -c {q(PROBE.read_text())} {q(workdir)} {names}", hide=True
        )
    except UnexpectedExit as exc:
        if exc.result.exited == REFUSED:  # not parbench's workdir: nothing was touched
            raise StepError(exc.result.stderr.strip()) from None
        raise
    facts = json.loads(probe.stdout)
    version = tuple(facts["python"])
    if version < MIN_PYTHON:
        raise StepError(
            f"{node.python} is Python {'.'.join(map(str, version))}; the worker "
            f"needs {'.'.join(map(str, MIN_PYTHON))}+ (set nodes[].python)"
        )
    # claim the workdir (the marker before anything else), then make its folders
    dirs = " ".join(q(posixpath.join(workdir, d)) for d in ("worker", "data", "wheels", "runs"))
    marker = q(posixpath.join(workdir, MARKER))
    conn.run(f"mkdir -p {q(workdir)} && touch {marker} && mkdir -p {dirs}", hide=True)
    stale = [a for a in arts if facts["hashes"].get(a.remote) != a.sha256]
    for art in stale:
        conn.put(str(art.local), posixpath.join(workdir, art.remote))
    ours = {a.remote.split("/", 1)[1] for a in arts if a.remote.startswith("worker/")}
    extra = [f for f in facts["worker_files"] if f.endswith(".py") and f not in ours]
    if extra:  # modules removed from the package since the last push
        conn.run(
            "rm -f -- " + " ".join(q(posixpath.join(workdir, "worker", f)) for f in extra),
            hide=True,
        )
    stamp = runtime_stamp(arts, node.python)
    provisioned = facts["runtime"] != stamp
    if provisioned:  # installs exactly these wheels and deletes other *.whl in wheels/
        wheels = " ".join(q(posixpath.basename(a.remote)) for a in _wheels(arts))
        conn.run(
            f"cd {q(workdir)} && PYTHONPATH={q(workdir)} {q(node.python)} -m "
            f"worker.bootstrap --wheels wheels --venv venv --stamp {stamp} {wheels}",
            hide=True,
        )
    offset, error = measure_clock(conn, node.python)
    return NodeInfo(
        facts["hostname"],
        facts["platform"],
        ".".join(map(str, version)),
        offset,
        error,
        len(stale),
        provisioned,
    )
