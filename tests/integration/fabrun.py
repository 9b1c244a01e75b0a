"""Drive ``fab`` as a user does: a subprocess, an inventory file, exit code and output."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from testbed.bed import inventory_dict

REPO = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).with_name("fab")


@dataclass(frozen=True)
class FabRun:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def write_inventory(
    testbed: Any,
    path: Path,
    nodes: int = 3,
    node_overrides: Any = None,
    **defaults: Any,
) -> Path:
    """The testbed's inventory, with ``nodes`` nodes and some defaults changed."""
    doc = inventory_dict(testbed.layout, testbed.state)
    doc["nodes"] = doc["nodes"][:nodes]
    for node in doc["nodes"]:
        node.update(node_overrides or {})
    # read copies per test too, so that no test verifies another one's copies
    local_dst = "read" + str(defaults.get("dst", "")).replace("/", "-")
    doc["defaults"].update({"connect_timeout": 5, "local_dst": local_dst, **defaults})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def edit_inventory(path: Path, change: Callable[[dict], None]) -> Path:
    """Load the inventory at ``path``, let ``change`` edit the document, write it back."""
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def update_node(path: Path, index: int, **fields: Any) -> Path:
    """Set ``fields`` on node ``index`` of the inventory at ``path``."""
    return edit_inventory(path, lambda doc: doc["nodes"][index].update(fields))


def fab_env(tmp_path: Path, inventory: Optional[Path]) -> dict:
    """The environment of a ``fab`` run: results under ``tmp_path``, ``inventory``
    through the environment (None: as ``fab`` itself chooses it)."""
    env = {**os.environ, "FABRIC_BENCH_RESULTS": str(tmp_path / "results")}
    env.pop("FABRIC_BENCH_INVENTORY", None)
    if inventory is not None:
        env["FABRIC_BENCH_INVENTORY"] = str(inventory)
    return env


def fab_popen(tmp_path: Path, inventory: Optional[Path], *args: str) -> subprocess.Popen:
    """``fab ARGS`` started in the background (to interrupt it, or to race it); its
    output, stdout and stderr together, on ``.stdout``."""
    return subprocess.Popen(
        [str(FAB), "-r", str(REPO), *args],
        cwd=tmp_path,
        env=fab_env(tmp_path, inventory),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def fab(tmp_path: Path, inventory: Optional[Path], *args: str, timeout: float = 300) -> FabRun:
    """``fab ARGS`` in ``tmp_path`` with ``fab_env``; its exit code and output."""
    env = fab_env(tmp_path, inventory)
    proc = subprocess.run(
        [str(FAB), "-r", str(REPO), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return FabRun(proc.returncode, proc.stdout, proc.stderr)


def fab_tty(tmp_path: Path, inventory: Optional[Path], *args: str, timeout: float = 120) -> FabRun:
    """``fab ARGS`` with a terminal (a pseudo-terminal) as its stdout and stderr, as a
    person at a laptop runs it; everything it wrote to the terminal is ``out``."""
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [str(FAB), "-r", str(REPO), *args],
        cwd=tmp_path,
        env=fab_env(tmp_path, inventory),
        stdin=subprocess.DEVNULL,
        stdout=side,
        stderr=side,
    )
    os.close(side)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    return FabRun(code, seen.decode(errors="replace"), "")
