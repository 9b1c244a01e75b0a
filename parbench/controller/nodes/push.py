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
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Optional

from fabric import Connection

from parbench.worker import layout
from parbench.worker.protocol import PROBE_STAMPED, ProbeFacts, generated_stamp_holds

from ..run.inventory import Inventory, Node
from ..run.plan import worker_command
from ..run.reference import CACHE, PushError, generated_sha256, reference_file, sha256_of
from .agents import Agents
from .nodeoutput import printable, tail
from .nodeprobe import NodeInfo, Session, probe_node
from .remote import StepError

if TYPE_CHECKING:
    from .locks import RunLocks

#: the package: the worker it pushes and the runtime's lock are package data
PACKAGE = Path(__file__).resolve().parents[2]
WORKER = PACKAGE / "worker"
WHEEL_CACHE = CACHE / "wheels"
#: the storage clients the worker's backends import: alluxio (REST proxy), s3; posix needs none
RUNTIME_REQUIREMENTS = ("alluxio==0.1.4", "boto3==1.42.97")
MIN_PYTHON = (3, 9)


class RuntimeUnavailable(RuntimeError):
    """The worker's runtime (the storage client's wheels) could not be downloaded."""


@dataclass(frozen=True)
class Artifact:
    local: Path
    remote: str  # relative to the node's workdir
    sha256: str


#: the runtime's wheels as ``<sha256>  <wheel file name>`` lines: exactly what nodes get
RUNTIME_LOCK = PACKAGE / "worker-runtime.lock"
_WHEEL_FILE = re.compile(  # name-version[-build]-python-abi-platform.whl
    r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(?:-\d[\w.]*)?-[\w.]+-[\w.]+-[\w.]+\.whl"
)
_LOCK_LINE = re.compile(rf"(?P<sha256>[0-9a-f]{{64}})  (?P<file>{_WHEEL_FILE.pattern})")
_PIP_DOWNLOAD = (  # pure-Python wheels that any Python 3.9+ can unpack
    *("-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.9"),
    *("--implementation", "py", "--abi", "none", "--platform", "any"),
)
_LOCK_HEADER = """\
# The worker runtime: {requirements} and their dependencies, pure-Python wheels for Python
# 3.9+, one "<sha256>  <wheel file name>" line each. parbench/controller/nodes/push.py's
# ensure_wheels downloads exactly these files and refuses any whose sha256 differs. Regenerate
# (network) after changing RUNTIME_REQUIREMENTS in parbench/controller/nodes/push.py, then
# review the diff:
#   .venv/bin/python -c 'from parbench.controller.nodes.push import relock; relock()'
"""


def ensure_wheels(cache: Path = WHEEL_CACHE, lock: Path = RUNTIME_LOCK) -> list[Path]:
    """The wheels ``lock`` lists, downloaded once into ``cache``; each call checks every
    wheel's sha256 against the lock, and a difference raises RuntimeUnavailable.

    The marker records the lock's digest: when the lock changes, the cache's wheels are
    deleted and downloaded again, so the cache never holds two versions of a package. After
    a failed check the marker is gone, so the next call downloads afresh.
    """
    locked = read_lock(lock)
    digest = hashlib.sha256(json.dumps(sorted(locked.items())).encode()).hexdigest()
    marker = cache / ".complete"
    fresh = not marker.is_file() or marker.read_text().strip() != digest
    if fresh:
        marker.unlink(missing_ok=True)
        for old in cache.glob("*.whl"):
            old.unlink()
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(map(_requirement, locked.items())))
            _pip_download(cache, "--require-hashes", "--no-deps", "-r", str(requirements))
    problems = _check_wheels(cache, locked, lock.name)
    if problems:
        marker.unlink(missing_ok=True)
        raise RuntimeUnavailable(
            f"worker runtime in {cache}: {'; '.join(problems)} (the next run downloads it again)"
        )
    if fresh:
        marker.write_text(digest)
    return [cache / name for name in sorted(locked)]


def read_lock(lock: Path = RUNTIME_LOCK) -> dict[str, str]:
    """Wheel file name -> sha256, from ``lock`` (``#`` starts a comment line)."""
    try:
        lines = lock.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeUnavailable(f"cannot read the runtime's lock file: {exc}") from None
    locked: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LOCK_LINE.fullmatch(line)
        if not match or match["file"] in locked:
            raise RuntimeUnavailable(
                f"{lock}: line {number}: expected '<sha256>  <wheel file name>', each wheel"
                f" once, got {line!r}"
            )
        locked[match["file"]] = match["sha256"]
    if not locked:
        raise RuntimeUnavailable(f"{lock}: lists no wheels")
    return locked


def _requirement(wheel: tuple[str, str]) -> str:
    """A requirements line that pins a locked wheel by version and sha256."""
    file, sha256 = wheel
    match = _WHEEL_FILE.fullmatch(file)
    assert match is not None  # read_lock checked it
    return f"{match['name']}=={match['version']} --hash=sha256:{sha256}\n"


def _check_wheels(cache: Path, locked: dict[str, str], lock_name: str) -> list[str]:
    """What differs between the wheels in ``cache`` and the lock, one phrase each."""
    problems = []
    present = sorted(cache.glob("*.whl"))
    for path in present:
        got, want = sha256_of(path), locked.get(path.name)
        if want is None:
            problems.append(f"{path.name} (sha256 {got}) is not in {lock_name}")
        elif got != want:
            problems.append(f"{path.name} has sha256 {got}, {lock_name} says {want}")
    for name in sorted(set(locked) - {p.name for p in present}):
        problems.append(f"{name} (sha256 {locked[name]} in {lock_name}) is missing")
    return problems


def _pip_download(folder: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, *_PIP_DOWNLOAD, "-d", str(folder), *args], capture_output=True, text=True
    )
    if proc.returncode != 0:
        why = " ".join(proc.stderr.split())[-500:]  # pip's hash report spans several lines
        raise RuntimeUnavailable(f"could not download the worker runtime into {folder}: {why}")


def relock(requirements: tuple[str, ...] = RUNTIME_REQUIREMENTS, lock: Path = RUNTIME_LOCK) -> None:
    """Write ``lock`` from the wheels pip picks for ``requirements`` today (needs the network;
    run by hand after changing RUNTIME_REQUIREMENTS, then review and commit the lock)."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip_download(Path(tmp), *requirements)
        wheels = sorted(Path(tmp).glob("*.whl"))
        lines = [f"{sha256_of(w)}  {w.name}\n" for w in wheels]
    lock.write_text(_LOCK_HEADER.format(requirements=" ".join(requirements)) + "".join(lines))


def artifacts(inventory: Inventory, wheels: list[Path], data: bool = True) -> list[Artifact]:
    """What a node needs: the worker package, the runtime's wheels and (``data``) the
    reference file."""
    files = [
        (p, f"{layout.WORKER}/{p.relative_to(WORKER).as_posix()}")
        for p in sorted(WORKER.rglob("*.py"))  # its subpackages (worker/protocol/) too
    ]
    files += [(w, f"{layout.WHEELS}/{w.name}") for w in wheels]
    if data and not isinstance(inventory.settings.data, int):  # an int: generated there
        reference = reference_file(inventory)
        files.append((reference, f"{layout.DATA}/{reference.name}"))
    return [Artifact(local, remote, sha256_of(local)) for local, remote in files]


def check_reference(arts: list[Artifact], path: str, sha256: str) -> None:
    """The reference file about to be pushed is the run's (by content), or PushError."""
    for art in arts:
        if art.remote.startswith(layout.DATA + "/") and art.sha256 != sha256:
            raise PushError(
                f"reference file {art.local} changed since the run sealed {path} "
                f"(sha256 {art.sha256[:12]}..., the run's {sha256[:12]}...)"
            )


def _wheels(arts: list[Artifact]) -> list[Artifact]:
    return [a for a in arts if a.remote.startswith(layout.WHEELS + "/")]


def runtime_stamp(arts: list[Artifact], python: str) -> str:
    wheels = sorted(a.sha256 for a in _wheels(arts))
    return hashlib.sha256(json.dumps([python, wheels]).encode()).hexdigest()[:16]


def same_workdirs(infos: dict[str, NodeInfo]) -> list[tuple[str, str]]:
    """Pairs of node ids whose workdir is one directory of one machine (a machine listed
    twice under different names); nodes whose machine or workdir is unknown pair with none."""
    seen: dict[tuple[str, tuple[int, int]], list[str]] = {}
    pairs: list[tuple[str, str]] = []
    for nid, info in infos.items():
        if info.machine is None or info.workdir_id is None:
            continue
        twins = seen.setdefault((info.machine, tuple(info.workdir_id)), [])
        pairs += [(twin, nid) for twin in twins]
        twins.append(nid)
    return pairs


def generated_size(inventory: Inventory, data: bool = True) -> Optional[int]:
    """The size of the data a push (``data``: with the reference) generates on the nodes;
    None when the reference is a file, or without the data."""
    generated = inventory.settings.data if data else None
    return generated if isinstance(generated, int) else None


def _generated_name(size: int) -> str:
    return posixpath.join(layout.DATA, layout.generated_file(size))


def _stamped_current(facts: ProbeFacts, size: int) -> bool:
    """Whether the probe found the generated data of ``size`` bytes vouched for by its
    stamp (then no ``worker generate`` needs to run)."""
    found = facts.stamps.get(_generated_name(size))
    return found is not None and generated_stamp_holds(
        found.stamp, found.file, generated_sha256(size)
    )


def _generate(conn: Connection, node: Node, size: int) -> None:
    """Make the generated reference on ``node`` (once: a stamp says it is there), checked
    against the controller's digest; StepError naming the file when it differs."""
    name = _generated_name(size)
    made = conn.run(
        worker_command(
            node,
            "generate",
            "--bytes",
            str(size),
            "--sha256",
            generated_sha256(size),
            "--out",
            name,
        ),
        hide=True,
        warn=True,
    )
    if made.exited != 0:
        raise StepError(
            f"generated reference {name}: {tail(made.stderr or made.stdout) or made.exited}"
        )


def push_node(
    conn: Connection,
    node: Node,
    inventory: Inventory,
    arts: list[Artifact],
    data: bool = True,
    agents: Optional[Agents] = None,
    locks: Optional[RunLocks] = None,
    sizes: Collection[int] = (),
) -> NodeInfo:
    """Check ``node`` and bring it up to date; with ``agents``, its probe then stays on
    as the node's agent for the rest of this process. With ``locks``, the node's workdir
    is locked (through its probe) before anything in it changes: LockHeld if another
    run holds it, and nothing changed. When the data is generated there, that of every
    size in ``sizes`` is made too, under the same lock (a sweep over size: all at once)."""
    generated = generated_size(inventory, data)
    made = [] if generated is None else sorted({generated, *sizes})
    asked = [a.remote for a in arts] + [PROBE_STAMPED + _generated_name(s) for s in made]
    facts, offset, error, session = probe_node(conn, node, asked)  # workdir claimed if it may

    def lock() -> None:
        if locks is not None:
            locks.take_workdir(node, lambda line: _asked(session, line))

    try:
        updated = _update(conn, node, inventory, arts, facts, made, lock)
    except BaseException:
        session.finish()
        raise
    if agents is None:
        code, err = session.finish()
        if code != 0:
            raise StepError(f"the probe exited {code}: {printable(err.strip()[-200:])}")
    else:  # without an agent the node is still ready: its steps get sessions of their own
        agents.hand_over(node, session)
    stale, provisioned = updated
    return NodeInfo(
        facts.hostname,
        facts.platform,
        ".".join(map(str, facts.python)),
        offset,
        error,
        len(stale),
        provisioned,
        facts.machine,
        (facts.workdir_id[0], facts.workdir_id[1]),
    )


def _asked(session: Session, line: str) -> str:
    """The probe's one-line answer to ``line``."""
    session.send(line + "\n")
    return session.readline()


def _update(
    conn: Connection,
    node: Node,
    inventory: Inventory,
    arts: list[Artifact],
    facts: ProbeFacts,
    generated: Collection[int],
    lock: Callable[[], None] = lambda: None,
) -> tuple[list[Artifact], bool]:
    """Bring ``node`` up to date from what its probe found, once ``lock()`` holds its
    workdir: the files that were stale, and whether the runtime was installed."""
    workdir = node.workdir
    q = shlex.quote
    version = facts.python
    if version < MIN_PYTHON:
        raise StepError(
            f"{node.python} is Python {'.'.join(map(str, version))}; the worker "
            f"needs {'.'.join(map(str, MIN_PYTHON))}+ (set nodes[].python)"
        )
    if facts.workdir_id is None:
        raise StepError(f"the probe did not make the workdir {workdir}")
    lock()  # before anything in the workdir changes
    stale = [a for a in arts if facts.hashes.get(a.remote) != a.sha256]
    # the probe made the workdir's folders (layout.FOLDERS); those below them (a package's
    # subpackages: worker/protocol/) are made here, private as the probe's are
    below = sorted({posixpath.dirname(a.remote) for a in stale} - set(layout.FOLDERS))
    if below:
        made = " ".join(q(posixpath.join(workdir, folder)) for folder in below)
        conn.run(f"umask 077 && mkdir -p -- {made}", hide=True)
    for art in stale:
        # a new name, then a rename: a worker reading the old file keeps reading it whole
        final = posixpath.join(workdir, art.remote)
        conn.put(str(art.local), final + layout.PARTIAL)
        conn.sftp().posix_rename(final + layout.PARTIAL, final)
    ours = {a.remote.split("/", 1)[1] for a in arts if a.remote.startswith(layout.WORKER + "/")}
    extra = [f for f in facts.worker_files if f.endswith(".py") and f not in ours]
    if extra:  # modules removed from the package since the last push
        conn.run(
            "rm -f -- " + " ".join(q(posixpath.join(workdir, layout.WORKER, f)) for f in extra),
            hide=True,
        )
    stamp = runtime_stamp(arts, node.python)
    provisioned = facts.runtime != stamp
    if provisioned:  # installs exactly these wheels and deletes other *.whl in wheels/
        wheels = " ".join(q(posixpath.basename(a.remote)) for a in _wheels(arts))
        conn.run(
            f"cd {q(workdir)} && PYTHONPATH={q(workdir)} {q(node.python)} -m "
            f"worker.bootstrap --wheels {layout.WHEELS} --venv {layout.VENV} --stamp {stamp}"
            f" {wheels}",
            hide=True,
        )
    for size in generated:
        if not _stamped_current(facts, size):
            _generate(conn, node, size)  # made, or made again, and checked there
    return stale, provisioned
