"""Which run a task works on, and the run's manifest.

``fab write`` starts a run; tasks chained after it in the same ``fab`` command continue
it; a later ``fab read`` or ``fab verify`` continues ``results/latest`` or ``--run ID``.
"""

from __future__ import annotations

import getpass
import platform
import socket
import time
from importlib import metadata
from pathlib import Path
from typing import Optional

from worker.hashing import hash_file

from .inventory import Inventory
from .plan import new_run_id
from .push import reference_file
from .rundir import RunDir, RunNotFound

#: runs started by this process, per results root: what chained tasks continue
_ACTIVE: dict[Path, RunDir] = {}

PACKAGES = ("fabric", "invoke", "paramiko", "pyyaml", "alluxio")


def _versions() -> dict[str, Optional[str]]:
    found: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def manifest(inventory: Inventory, run_id: str) -> dict:
    data = reference_file(inventory)
    return {
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "controller": {
            "hostname": socket.gethostname(),
            "user": getpass.getuser(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
        "inventory": {"path": str(inventory.path), "document": inventory.raw},
        "reference": {
            "path": str(data),
            "bytes": data.stat().st_size,
            "sha256": hash_file(str(data)),
        },
        "nodes": {},
    }


def start(inventory: Inventory, root: Path) -> RunDir:
    run_id = new_run_id()
    facts = manifest(inventory, run_id)  # checks the reference file before any folder exists
    run = RunDir.create(root, run_id)
    run.write_json("manifest.json", facts)
    _ACTIVE[root.resolve()] = run
    print(f"run {run.run_id}: results in {run.path}/")
    return run


def current(
    inventory: Inventory,
    root: Path,
    run_id: Optional[str] = None,
    configured: Optional[str] = None,
    create: bool = False,
) -> RunDir:
    """The run named by ``--run``, else the one this ``fab`` command started, else the
    configured one (``bench.run``), else the latest.

    A configured run never takes over from a chained ``fab write read verify``: that
    reads and checks what its own write produced. With no run at all, a new one when
    ``create`` (a same-file read needs no write before it), else RunNotFound saying to
    run ``fab write`` first.
    """
    if run_id:
        run = RunDir.open(root, run_id)
    elif root.resolve() in _ACTIVE:
        return _ACTIVE[root.resolve()]
    elif configured:
        run = RunDir.open(root, configured)
    else:
        try:
            run = RunDir.open(root, "latest")
        except RunNotFound:
            if create:
                return start(inventory, root)
            raise
    _ACTIVE[root.resolve()] = run
    print(f"run {run.run_id}: continuing, results in {run.path}/")
    return run
