"""A run: its id, what each node writes and reads, and the worker command lines for it.

Everything here is pure: it turns a validated inventory (and the read mode) into
``NodeTask``s, the exact ``python -m worker ...`` argument lists each node runs.
"""

from __future__ import annotations

import posixpath
import secrets
import shlex
import time
from dataclasses import dataclass
from typing import Optional

from .inventory import Inventory, Node
from .pairing import Pairing, cross_node

READ_MODES = ("cross", "same")


def new_run_id(now: Optional[float] = None) -> str:
    """Sortable and unique enough for one laptop or scheduler: ``20261125T103200Z-1a2b``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class NodePaths:
    """Where things live on a node, all below its workdir (except ``local_dst``)."""

    workdir: str
    local_dst: str

    @property
    def venv_python(self) -> str:
        return posixpath.join(self.workdir, "venv", "bin", "python")

    def data(self, name: str) -> str:
        return posixpath.join(self.workdir, "data", name)

    def run_dir(self, run_id: str) -> str:
        return posixpath.join(self.workdir, "runs", run_id)

    def output(self, run_id: str, phase: str) -> str:
        return posixpath.join(self.run_dir(run_id), f"{phase}.jsonl")


def node_paths(inventory: Inventory, node: Node) -> NodePaths:
    return NodePaths(node.workdir, inventory.local_dst(node))


@dataclass(frozen=True)
class ReadPlan:
    """Which storage path each reading client reads."""

    mode: str  # "cross" or "same"
    src: Optional[str] = None  # same-file mode: the one storage path
    pairing: Optional[Pairing] = None  # cross mode

    def sources(self, node: Node, dst: str) -> list[str]:
        """The storage path for each client ``0..node.clients-1`` of ``node``."""
        if self.mode == "same":
            assert self.src is not None
            return [self.src] * node.clients
        assert self.pairing is not None
        return [
            posixpath.join(dst, a.source_node, str(a.source_client))
            for a in self.pairing.for_node(node.id)
        ]

    def to_dict(self) -> dict:
        out: dict = {"mode": self.mode}
        if self.src is not None:
            out["src"] = self.src
        if self.pairing is not None:
            out["assignments"] = [
                {
                    "reader": [a.reader_node, a.reader_client],
                    "source": [a.source_node, a.source_client],
                }
                for a in self.pairing.assignments
            ]
            out["unread"] = [list(f) for f in self.pairing.unread]
            out["read_twice"] = [list(f) for f in self.pairing.read_twice]
        return out


class PlanError(ValueError):
    """A run cannot be planned as asked; the message says why."""


def read_plan(inventory: Inventory, mode: str = "cross", src: Optional[str] = None) -> ReadPlan:
    """Cross-node pairing from the inventory, or every client reading ``src``."""
    if mode not in READ_MODES:
        raise PlanError(f"--mode must be one of {', '.join(READ_MODES)}, got {mode!r}")
    if mode == "same":
        if not src or not src.startswith("/"):
            raise PlanError(f"--mode same needs --src with an absolute storage path, got {src!r}")
        return ReadPlan("same", src=src)
    if src:
        raise PlanError("--src is for --mode same; cross-node reads use the files of `fab write`")
    return ReadPlan("cross", pairing=cross_node(inventory.clients_by_node()))


def write_paths(inventory: Inventory, node: Node) -> list[str]:
    """``{dst}/{nid}/{cid}`` for each client of ``node``."""
    return [
        posixpath.join(inventory.settings.dst, node.id, str(cid)) for cid in range(node.clients)
    ]


#: share of ``phase_timeout`` a single storage request, and the whole worker (its
#: ``--deadline``), may take: a hung request or a slow client then ends as an error record
#: on the node before the controller gives up the node and loses all its records
REQUEST_TIMEOUT_SHARE = 0.9


def worker_args(
    inventory: Inventory,
    node: Node,
    phase: str,
    run_id: str,
    common_start: bool = False,
    read: Optional[ReadPlan] = None,
    deadline: Optional[float] = None,
) -> list[str]:
    """The arguments after ``python -m worker`` for ``phase`` (or ``clean``) on ``node``.

    ``common_start``: the clients start when the controller says (controller/startgate.py).
    ``deadline`` is in epoch seconds on the node's clock."""
    s = inventory.settings
    paths = node_paths(inventory, node)
    reference = paths.data(s.data.name)
    args = [phase]
    if phase == "write":
        args += ["--src", reference, "--dst", s.dst, "--on-existing", s.on_existing]
    elif phase == "read":
        if read is None:
            raise PlanError("a read needs a read plan")
        for source in read.sources(node, s.dst):
            args += ["--src", source]
        args += ["--dst", paths.local_dst]
    elif phase == "verify-write":
        args += ["--src", reference, "--dst", s.dst]
        if node.alluxio_home and s.backend == "alluxio":
            args += ["--home", node.alluxio_home]
    elif phase == "verify-read":
        args += ["--src", reference, "--dst", paths.local_dst]
    elif phase == "clean":
        args += ["--dst", s.dst, "--local-dst", paths.local_dst]
    else:
        raise PlanError(f"unknown phase {phase!r}")
    args += ["--node", node.id, "--nfile", str(node.clients), "--backend", s.backend]
    if s.backend == "alluxio":
        args += ["--host", node.proxy.host, "--port", str(node.proxy.port)]
    elif node.posix_root:
        args += ["--root", node.posix_root]
    timeout = s.phase_timeout * REQUEST_TIMEOUT_SHARE
    args += ["--write-type", s.write_type, "--read-type", s.read_type]
    args += ["--chunk-size", str(s.chunk_size), "--timeout", f"{timeout:g}", "--run-id", run_id]
    if phase != "clean":
        args += ["--out", paths.output(run_id, phase)]
    if common_start:
        args.append("--start-on-stdin")
    if deadline is not None:
        args += ["--deadline", f"{deadline:.6f}"]
    return args


def worker_command(node: Node, paths: NodePaths, args: list[str]) -> str:
    """The shell command that runs the worker on ``node``; every argument quoted."""
    q = shlex.quote
    return (
        f"cd {q(node.workdir)} && PYTHONPATH={q(node.workdir)} "
        f"{q(paths.venv_python)} -m worker " + " ".join(q(a) for a in args)
    )
