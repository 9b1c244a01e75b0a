"""A run: its id, what each node writes and reads, and the request each node is sent.

Everything here is pure: it turns a validated inventory (and the read mode) into one
:class:`worker.protocol.PhaseRequest` per node and phase.
"""

from __future__ import annotations

import posixpath
import secrets
import shlex
import time
from dataclasses import dataclass
from typing import Optional

from parbench.worker import layout
from parbench.worker.layout import generated_file
from parbench.worker.protocol import (
    PHASES,
    S3_MAX_PARTS,
    S3_MIN_PART,
    TIMED_PHASES,
    PhaseRequest,
    Reference,
    StorageConfig,
    phase_request,
)

from .inventory import Inventory, Node, Settings
from .pairing import Assignment, Pairing, cross_node
from .settings import request_settings

READ_MODES = ("cross", "same")


def new_run_id(now: Optional[float] = None) -> str:
    """Sortable and unique enough for one laptop or scheduler: ``20261125T103200Z-1a2b``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class NodePaths:
    """Where parbench's own files live on a node, all below its workdir (worker/layout.py)."""

    workdir: str

    @property
    def venv_python(self) -> str:
        return layout.venv_python(self.workdir)

    def data(self, name: str) -> str:
        return layout.data(self.workdir, name)

    def run_dir(self, run_id: str) -> str:
        return layout.run_dir(self.workdir, run_id)

    def output(self, run_id: str, phase: str) -> str:
        return layout.records(self.workdir, run_id, phase)

    def request(self, run_id: str, phase: str) -> str:
        return layout.request_file(self.workdir, run_id, phase)


@dataclass(frozen=True)
class ReadPlan:
    """Which storage path each reading client reads."""

    mode: str  # "cross" or "same"
    src: Optional[str] = None  # same-file mode: the one storage path
    pairing: Optional[Pairing] = None  # cross mode

    def sources(self, node: Node, dst: str) -> list[str]:
        """The storage path for each client ``0..node.clients-1`` of ``node``."""
        if self.mode == "same":  # "{cid}" becomes each client's id, on every node alike
            assert self.src is not None
            return [self.src.replace("{cid}", str(cid)) for cid in range(node.clients)]
        assert self.pairing is not None
        return [
            posixpath.join(dst, a.source_node, str(a.source_client))
            for a in self.pairing.for_node(node.id)
        ]

    @classmethod
    def from_dict(cls, data: dict) -> ReadPlan:
        """The plan as ``to_dict`` wrote it (KeyError/TypeError/ValueError otherwise)."""
        if data["mode"] == "same":
            return cls("same", src=data["src"])
        pairing = Pairing(
            assignments=tuple(Assignment(*a["reader"], *a["source"]) for a in data["assignments"]),
            unread=tuple((n, int(c)) for n, c in data["unread"]),
            read_twice=tuple((n, int(c), int(t)) for n, c, t in data["read_twice"]),
        )
        return cls("cross", pairing=pairing)

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


def check_read_options(mode: str, src: Optional[str]) -> None:
    """``--mode`` and ``--src`` make sense together, or PlanError saying why."""
    if mode not in READ_MODES:
        raise PlanError(f"--mode must be one of {', '.join(READ_MODES)}, got {mode!r}")
    if mode == "same" and (not src or not src.startswith("/")):
        raise PlanError(f"--mode same needs --src with an absolute storage path, got {src!r}")
    if mode == "cross" and src:
        raise PlanError("--src is for --mode same; cross-node reads use the files of `fab write`")


def read_plan(inventory: Inventory, mode: str = "cross", src: Optional[str] = None) -> ReadPlan:
    """Cross-node pairing from the inventory, or every client reading ``src``."""
    check_read_options(mode, src)
    if mode == "same":
        return ReadPlan("same", src=src)
    return ReadPlan("cross", pairing=cross_node(inventory.clients_by_node()))


def write_paths(inventory: Inventory, node: Node) -> list[str]:
    """``{dst}/{nid}/{cid}`` for each client of ``node``."""
    return [
        posixpath.join(inventory.settings.dst, node.id, str(cid)) for cid in range(node.clients)
    ]


#: share of ``phase_timeout`` a single storage request, and the whole worker (its
#: deadline), may take: a hung request or a slow client then ends as an error record on
#: the node before the controller gives up the node and loses all its records
REQUEST_TIMEOUT_SHARE = 0.9


def phase_budget(settings: Settings) -> float:
    """Seconds a phase may take on a node before its clients are stopped."""
    return settings.phase_timeout * REQUEST_TIMEOUT_SHARE


@dataclass(frozen=True)
class ReferenceFacts:
    """The reference file on the controller, as the run sealed it."""

    path: str  # on the controller; "generated:<bytes>" for data generated on the nodes
    bytes: int
    sha256: str
    generated: bool = False

    @property
    def name(self) -> str:
        """The file's name on the nodes (in their data/ folder)."""
        return generated_file(self.bytes) if self.generated else posixpath.basename(self.path)


def s3_endpoint(settings: Settings, node: Node) -> str:
    """The S3 API ``node`` uses: ``s3_endpoint``, else its proxy's (Alluxio 2.9 serves S3 at
    ``/api/v1/s3``), so ``--backend s3`` works on an inventory written for the REST proxy."""
    return settings.s3_endpoint or f"http://{node.proxy.host}:{node.proxy.port}/api/v1/s3"


def storage_config(settings: Settings, node: Node, timeout: float) -> StorageConfig:
    """How ``node``'s clients reach the run's storage (one request's timeout ``timeout``)."""
    s = settings
    common = {
        "write_type": s.write_type,
        "read_type": s.read_type,
        "timeout": timeout,
        "part_size": s.chunk_size,
    }
    if s.backend == "posix":
        return StorageConfig("posix", root=node.posix_root, **common)
    if s.backend == "s3":
        return StorageConfig(
            "s3",
            endpoint=s3_endpoint(s, node),
            addressing=s.s3_addressing,
            region=s.s3_region,
            profile=s.s3_profile,
            access_key=s.s3_access_key,
            **common,
        )
    home = node.alluxio_home if s.backend == "native" else None  # native: bin/alluxio
    return StorageConfig(s.backend, node.proxy.host, node.proxy.port, alluxio_home=home, **common)


def check_upload(settings: Settings, reference: ReferenceFacts) -> None:
    """An s3 run's files fit one multipart upload: at most S3_MAX_PARTS parts of
    ``chunk_size`` (at least S3_MIN_PART); PlanError naming the part size it needs."""
    if settings.backend != "s3":
        return
    part = max(settings.chunk_size, S3_MIN_PART)
    if reference.bytes > S3_MAX_PARTS * part:
        least = -(-reference.bytes // S3_MAX_PARTS)
        raise PlanError(
            f"defaults.data: a file of {reference.bytes} bytes is more than {S3_MAX_PARTS}"
            f" parts of {part} bytes, the most one S3 upload takes: set chunk_size (the part"
            f" size of backend s3) to at least {least} bytes"
        )


def _storage(inventory: Inventory, node: Node) -> StorageConfig:
    s = inventory.settings
    timeout = phase_budget(s)
    if s.request_timeout is not None:  # never longer than the phase's budget
        timeout = min(s.request_timeout, timeout)
    return storage_config(s, node, timeout)


def node_request(
    inventory: Inventory,
    node: Node,
    phase: str,
    run_id: str,
    reference: Optional[ReferenceFacts],
    read: Optional[ReadPlan] = None,
) -> PhaseRequest:
    """What ``node`` is asked to do in ``phase`` (``clean`` too); timed phases start
    behind the controller's barrier (controller/nodes/startgate.py)."""
    s = inventory.settings
    paths = NodePaths(node.workdir)
    if phase not in PHASES:
        raise PlanError(f"unknown phase {phase!r}")
    if phase == "read" and read is None:
        raise PlanError("a read needs a read plan")
    return phase_request(
        run_id,
        node.id,
        phase,
        _storage(inventory, node),
        node.clients,
        dst=s.dst,
        local_dst=inventory.local_dst(node),
        out=paths.output(run_id, phase),
        sources=read.sources(node, s.dst) if read is not None and phase == "read" else None,
        reference=None
        if reference is None
        else Reference(paths.data(reference.name), reference.bytes, reference.sha256),
        start="stdin" if phase in TIMED_PHASES else "now",
        controlled=phase != "clean",
        **request_settings(s),
    )


def phase_requests(
    inventory: Inventory,
    phase: str,
    run_id: str,
    reference: Optional[ReferenceFacts],
    read: Optional[ReadPlan] = None,
) -> dict[str, PhaseRequest]:
    """Node id -> its request for ``phase``, in inventory order."""
    return {
        n.id: node_request(inventory, n, phase, run_id, reference, read) for n in inventory.nodes
    }


def worker_command(node: Node, *args: str) -> str:
    """The shell command that runs ``python -m worker ARGS`` on ``node``; all quoted."""
    q = shlex.quote
    python = NodePaths(node.workdir).venv_python
    return (
        f"cd {q(node.workdir)} && PYTHONPATH={q(node.workdir)} {q(python)} -m worker "
        + " ".join(q(a) for a in args)
    )
