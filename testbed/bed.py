"""Bring the whole testbed up and down, and describe what is running."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from . import alluxio, fuse, sshnodes
from .layout import REPO, Layout
from .procs import PidFile, TestbedError, pid_files

DATA = REPO / "data" / "5mb.txt"
#: the oldest Python the worker supports; the testbed's last node runs it when present
OLDEST_PYTHON = "3.9"


#: the Python the nodes run (as the inventory's defaults.python): the one the testbed
#: runs on, not ``python3`` through PATH, which on a pyenv machine is a shell script that
#: runs pyenv before Python (+100 ms for every remote command)
NODE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def oldest_python() -> Optional[str]:
    """A Python 3.9 interpreter on this machine (pyenv's versions, then PATH without
    pyenv's shims, which depend on the caller's pyenv settings), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(
        pyenv.glob(f"{OLDEST_PYTHON}.*/bin/python{OLDEST_PYTHON}"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")],
    )
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{OLDEST_PYTHON}")
    return found if found and "/shims/" not in found else None


@dataclass
class State:
    """What ``up`` started: written to ``.testbed/state.json``."""

    nodes: list[dict] = field(default_factory=list)  # id, port, workdir
    alluxio: Optional[dict] = None  # the Ports, or None with --no-alluxio
    fuse: Optional[str] = None  # the Alluxio FUSE mount point, when mounted (--fuse)
    user: str = ""
    inventory: str = ""
    seconds_to_up: float = 0.0

    @property
    def proxy_port(self) -> Optional[int]:
        return self.alluxio["proxy"] if self.alluxio else None

    @classmethod
    def load(cls, layout: Layout) -> Optional[State]:
        try:
            return cls(**json.loads(layout.state.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def down(layout: Layout) -> list[str]:
    """Unmount the FUSE mount (also a crashed run's), then stop every process this
    testbed started (and only those); idempotent."""
    stopped = [fuse.NAME] if fuse.stop(layout) else []
    stopped += [pf.name for pf in pid_files(layout.run) if pf.stop()]
    layout.state.unlink(missing_ok=True)
    return stopped


def up(
    layout: Layout,
    nodes: int = 3,
    with_alluxio: bool = True,
    ports: Optional[alluxio.Ports] = None,
    with_fuse: bool = False,
) -> State:
    """Start fresh: stop what a crashed earlier run left, then nodes and Alluxio (and with
    ``with_fuse`` Alluxio's ``/`` mounted at ``layout.fuse``)."""
    if nodes < 1:
        raise TestbedError("--nodes must be at least 1")
    if with_fuse and not with_alluxio:
        raise TestbedError("--fuse mounts Alluxio: it cannot go with --no-alluxio")
    began = time.monotonic()
    ports = ports or alluxio.Ports.from_env()
    stale = down(layout)
    if stale:
        print(f"testbed: stopped stale processes of an earlier run: {', '.join(stale)}")
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        started = sshnodes.start(layout, nodes)
        print(
            f"testbed: {nodes} ssh node(s) on ports {', '.join(str(n.port) for n in started)}",
            flush=True,
        )
        if with_alluxio:
            alluxio.start(layout, ports)
            print(
                f"testbed: Alluxio {alluxio.VERSION} up, REST proxy on 127.0.0.1:{ports.proxy}",
                flush=True,
            )
        if with_fuse:
            alluxio.start_fuse(layout)
            print(f"testbed: Alluxio FUSE mounted at {layout.fuse}", flush=True)
    except BaseException:
        down(layout)
        raise
    state = State(
        nodes=[{"id": n.id, "port": n.port, "workdir": str(n.workdir)} for n in started],
        alluxio=asdict(ports) if with_alluxio else None,
        fuse=str(layout.fuse) if with_fuse else None,
        user=getpass.getuser(),
        inventory=str(layout.inventory),
        seconds_to_up=round(time.monotonic() - began, 1),
    )
    _record(layout, state)
    return state


def fuse_up(layout: Layout) -> State:
    """Mount Alluxio FUSE on the running testbed (``testbed fuse up``); the state and the
    inventory then name the mount (each node's ``posix_root``)."""
    state, procs = status(layout)
    others = [pid for name, pid in procs.items() if name != fuse.NAME]
    if state is None or not state.alluxio or not others or not all(others):
        raise TestbedError("no testbed with Alluxio is up: `python -m testbed up` first")
    fuse.stop(layout)  # a crashed mount's leftovers
    alluxio.start_fuse(layout)
    state.fuse = str(layout.fuse)
    _record(layout, state)
    return state


def fuse_down(layout: Layout) -> bool:
    """Unmount Alluxio FUSE and stop its JVM (``testbed fuse down``); the rest stays up."""
    stopped = fuse.stop(layout)
    state = State.load(layout)
    if state is not None and state.fuse:
        state.fuse = None
        _record(layout, state)
    return stopped


def _record(layout: Layout, state: State) -> None:
    write_inventory(layout, state)
    layout.state.write_text(json.dumps(asdict(state), indent=2))


def inventory_dict(layout: Layout, state: State) -> dict:
    """The benchmark's inventory format, pointing at this testbed."""
    defaults: dict = {"clients": 2, "dst": "/parbench", "data": str(DATA)}
    if NODE_PYTHON.exists():  # the nodes are this machine: no PATH lookup through shims
        defaults["python"] = str(NODE_PYTHON)
    if state.proxy_port:
        defaults["proxy"] = {"host": "127.0.0.1", "port": state.proxy_port}
    nodes = [
        {
            "id": n["id"],
            "host": "127.0.0.1",
            "port": n["port"],
            "user": state.user,
            "key": str(layout.client_key),
            "workdir": n["workdir"],
            **({"alluxio_home": str(layout.alluxio_home)} if state.alluxio else {}),
            # --backend posix then runs through Alluxio FUSE (the backend stays alluxio)
            **({"posix_root": state.fuse} if state.fuse else {}),
        }
        for n in state.nodes
    ]
    oldest = oldest_python()
    if oldest and len(nodes) > 1:  # so that every run also checks the worker on 3.9
        nodes[-1]["python"] = oldest
    return {
        "defaults": defaults,
        "ssh": {"known_hosts": str(layout.known_hosts), "strict_host_keys": True},
        "nodes": nodes,
    }


def write_inventory(layout: Layout, state: State) -> Path:
    layout.inventory.write_text(
        "# Written by `python -m testbed up`: the local testbed's nodes and Alluxio proxy.\n"
        + yaml.safe_dump(inventory_dict(layout, state), sort_keys=False)
    )
    return layout.inventory


def status(layout: Layout) -> tuple[Optional[State], dict[str, Optional[int]]]:
    """The recorded state and, per pid file, the live pid (None when it is gone)."""
    return State.load(layout), {pf.name: pf.live_pid() for pf in pid_files(layout.run)}


def is_up(layout: Layout) -> bool:
    state, procs = status(layout)
    return state is not None and bool(procs) and all(procs.values())


__all__ = ["State", "up", "down", "fuse_up", "fuse_down", "status", "is_up", "PidFile"]
