"""A sealed run: everything that defines it, written once when it starts.

``results/<run>/run.json`` holds the resolved inventory, the reference file's size and
sha256, and every node's request for every phase the run can have (write, the cross-node
read when there are two nodes or more, verify-write, verify-read). Later commands on the
run (``fab read``, ``fab verify --run ID``, months later) send those same requests; they
never re-derive them from today's inventory.

Today's inventory still says how to *reach* the nodes (:data:`ACCESS_FIELDS`: address,
ssh port, user and key, known_hosts, the timeouts to connect and of the start barrier, the
Python that makes the venv). Anything else that differs from the run's (nodes, paths,
clients, storage settings, the reference's content) is refused, with what differs, unless
the user asks for the run's own settings (``--from-run``).

What is sealed is checked when a run is opened (controller/run/seal.py): a run.json
changed since is refused (RunAltered).
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from parbench.worker.protocol import RECORDED_PHASES, PhaseRequest, RequestError
from parbench.worker.results import ClientResult

from .inventory import Inventory, with_flags
from .outcomes import PhaseResult
from .pairing import PairingError
from .plan import (
    ReadPlan,
    ReferenceFacts,
    check_upload,
    new_run_id,
    phase_requests,
    read_plan,
    write_paths,
)
from .reference import reference_facts
from .rundir import ResultsError, RunDir
from .seal import Seal, inventory_from_dict, inventory_to_dict, request_of, show

PACKAGES = ("fabric", "invoke", "paramiko", "pyyaml", "alluxio")

#: what today's inventory may change on an existing run: how the nodes are reached and
#: how the controller waits for them
ACCESS_FIELDS = {
    "node": ("host", "port", "user", "key", "python"),
    "settings": ("connect_timeout", "start_delay", "ready_timeout", "python", "fanout"),
    "ssh": ("known_hosts", "strict_host_keys", "forward_agent", "ssh_config_keys"),
}


class RunMismatch(ValueError):
    """Today's inventory disagrees with the run's on something that defines the run."""


def user_name() -> str:
    """This controller's user name; the uid where it has no passwd entry."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _versions() -> dict[str, Optional[str]]:
    found: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


# --- comparing today's inventory with the run's -----------------------------------------


def differences(run: Inventory, today: Inventory) -> list[str]:
    """What defines the run and differs now, one ``key: run's value -> today's`` each."""
    found: list[str] = []

    def compare(where: str, old: Any, new: Any, skip: tuple[str, ...]) -> None:
        for f in fields(old):
            if f.name not in skip and getattr(old, f.name) != getattr(new, f.name):
                found.append(
                    f"{where}.{f.name}: {show(getattr(old, f.name))} in the run, "
                    f"{show(getattr(new, f.name))} now"
                )

    compare("defaults", run.settings, today.settings, ACCESS_FIELDS["settings"])
    if run.node_ids != today.node_ids:
        found.append(
            f"nodes: {', '.join(run.node_ids)} in the run, {', '.join(today.node_ids)} now"
        )
    else:
        for old, new in zip(run.nodes, today.nodes):
            compare(f"nodes[{old.id}]", old, new, ACCESS_FIELDS["node"])
    return found


def with_access_from(run: Inventory, today: Inventory) -> Inventory:
    """The run's inventory, reached the way today's says (same node ids assumed)."""
    access = ACCESS_FIELDS
    nodes = tuple(
        replace(old, **{k: getattr(today.node(old.id), k) for k in access["node"]})
        for old in run.nodes
    )
    settings = replace(run.settings, **{k: getattr(today.settings, k) for k in access["settings"]})
    return replace(run, settings=settings, ssh=today.ssh, nodes=nodes)


# --- the run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run's folder and its sealed definition."""

    dir: RunDir
    inventory: Inventory  # as sealed (with today's access settings once reconciled)
    reference: ReferenceFacts
    requests: dict[str, dict[str, PhaseRequest]]  # phase -> node id -> request
    read_plan: Optional[ReadPlan]  # cross-node, when the run has two nodes or more
    #: the inventory's labels and those of the command that started the run
    labels: dict[str, str] = field(default_factory=dict)
    #: phase -> what this command's run of it did, in memory (a later command reads the
    #: run folder instead: ``--run``)
    results: dict[str, PhaseResult] = field(default_factory=dict, compare=False, repr=False)

    @property
    def run_id(self) -> str:
        return self.dir.run_id

    @property
    def path(self) -> Path:
        return self.dir.path

    @classmethod
    def start(
        cls, inventory: Inventory, root: Path, labels: Optional[dict[str, str]] = None
    ) -> Run:
        """Seal a new run of ``inventory`` under ``root`` (checks the reference first),
        labelled with the inventory's labels and ``labels`` (which win)."""
        reference = reference_facts(inventory)
        check_upload(inventory.settings, reference)
        run_id = new_run_id()
        try:
            cross: Optional[ReadPlan] = read_plan(inventory, "cross")
        except PairingError:  # one node: only a same-file read, planned when asked
            cross = None
        requests = {
            phase: phase_requests(inventory, phase, run_id, reference, cross)
            for phase in RECORDED_PHASES
            if phase != "read" or cross is not None
        }
        run = cls(
            RunDir.create(root, run_id),
            inventory,
            reference,
            requests,
            cross,
            {**inventory.labels, **(labels or {})},
        )
        run.dir.write_doc("run.json", run._sealed())
        run.dir.write_doc(
            "plan.json",
            {
                "write": {n.id: write_paths(inventory, n) for n in inventory.nodes},
                **({"read": cross.to_dict()} if cross is not None else {}),
            },
        )
        return run

    def _sealed(self) -> dict:
        return {
            "run_id": self.run_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "controller": {
                "hostname": socket.gethostname(),
                "user": user_name(),
                "pid": os.getpid(),
                "platform": platform.platform(),
            },
            "versions": _versions(),
            "inventory": inventory_to_dict(self.inventory),
            "reference": asdict(self.reference),
            "labels": self.labels,
            "read_plan": None if self.read_plan is None else self.read_plan.to_dict(),
            "requests": {
                phase: {nid: asdict(request) for nid, request in by_node.items()}
                for phase, by_node in self.requests.items()
            },
        }

    @classmethod
    def open(cls, root: Path, run_id: str = "latest") -> Run:
        """The sealed run ``run_id`` (or ``latest``); ResultsError when run.json is
        missing, damaged or of another version, RunAltered when it says what its own
        inventory does not give (changed since the run started)."""
        folder = RunDir.open(root, run_id)
        data = folder.read_doc("run.json")
        where = folder.path / "run.json"
        if data is None:
            raise ResultsError(
                f"{where} is missing: {folder.run_id} was not made by this version of "
                "parbench (or not finished starting); start a new run with `fab write`"
            )
        try:
            inventory = inventory_from_dict(data["inventory"])
            requests = {
                phase: {
                    nid: request_of(raw, f"requests.{phase}.{nid}") for nid, raw in nodes.items()
                }
                for phase, nodes in data["requests"].items()
            }
            reference = ReferenceFacts(**data["reference"])
            sealed = data.get("read_plan")
            plan = None if sealed is None else ReadPlan.from_dict(sealed)
        except (KeyError, TypeError, ValueError, RequestError) as exc:
            raise ResultsError(f"{where}: not a run this parbench can read: {exc}") from None
        seal = Seal(folder.run_id, where)
        seal.inventory(inventory)
        seal.reference(inventory, reference)
        seal.read_plan(inventory, plan)
        seal.requests(inventory, reference, plan, requests)
        return cls(folder, inventory, reference, requests, plan, dict(data.get("labels", {})))

    def keep(self, result: PhaseResult) -> None:
        """Hold what this command's phases did (saved already) for its later tasks."""
        for phase in result.phases:
            self.results[phase] = result

    def forget(self, phase: str) -> None:
        """Drop an earlier attempt of ``phase``, in memory and in the run folder."""
        self.results.pop(phase, None)
        self.dir.forget(phase)

    def records(self, phase: str) -> list[ClientResult]:
        """The records of ``phase``: this command's, in memory, when it ran the phase;
        else those in the run folder (an earlier command's)."""
        kept = self.results.get(phase)
        return kept.records(phase) if kept is not None else self.dir.records(phase)

    def reconciled(self, today: Optional[Inventory]) -> Run:
        """This run reached with today's access settings, or RunMismatch saying what of
        today's inventory differs from the run's (``today`` None: the run's own)."""
        if today is None:
            return self
        if self.inventory.flags and today.flags != self.inventory.flags:
            today = with_flags(today, self.inventory.flags)  # as the run's command had them
        found = differences(self.inventory, today)
        if not found:
            facts = reference_facts(today)
            if facts.sha256 != self.reference.sha256:
                found.append(
                    f"defaults.data: {facts.path} changed since the run (sha256 "
                    f"{facts.sha256[:12]}..., the run's {self.reference.sha256[:12]}...)"
                )
        if found:
            raise RunMismatch(
                f"run {self.run_id} was made with another inventory than {today.path}: "
                + "; ".join(found)
                + ". Use the run's own settings with --from-run, or start a new run"
            )
        return replace(self, inventory=with_access_from(self.inventory, today))

    def same_file_requests(self, src: str) -> dict[str, PhaseRequest]:
        """Read requests for every client reading ``src`` (``{cid}`` expanded)."""
        return phase_requests(
            self.inventory,
            "read",
            self.run_id,
            self.reference,
            read_plan(self.inventory, "same", src),
        )
