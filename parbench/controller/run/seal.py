"""What ``run.json`` holds beside the requests' plain fields: the run's inventory as plain
data and back, and the check made when a run is opened (:class:`Seal`): its inventory
is validated as an inventory file is, and every sealed request (and the read plan) must
be what that inventory gives; a run.json changed since is refused (:class:`RunAltered`),
as the requests it holds are sent to the nodes as they are (paths they write and delete).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from parbench.worker.protocol import (
    LATE_PHASES,
    RECORDED_PHASES,
    PhaseRequest,
    RequestError,
    decode,
)

from .inventory import Inventory, InventoryError, Node, Proxy, Settings, SshSettings, build
from .pairing import PairingError
from .plan import ReadPlan, ReferenceFacts, phase_requests, read_plan
from .settings import BY_NAME as SETTINGS
from .settings import default_of as settings_default


class RunAltered(ValueError):
    """A run.json says what its own sealed inventory does not give: it was changed after
    the run started (bad input: its requests are not sent)."""


# --- the inventory as plain data and back -----------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def inventory_to_dict(inventory: Inventory) -> dict:
    return {
        "path": str(inventory.path),
        "settings": _plain(asdict(inventory.settings)),
        "ssh": _plain(asdict(inventory.ssh)),
        "nodes": [_plain(asdict(n)) for n in inventory.nodes],
        "labels": inventory.labels,
        "document": inventory.raw,
        "flags": inventory.flags,
    }


def _path(value: Optional[str]) -> Optional[Path]:
    return None if value is None else Path(value)


def inventory_from_dict(data: dict) -> Inventory:
    """The inventory sealed in a run; KeyError/TypeError when its shape is not ours."""
    s = data["settings"]
    s = {**{k: settings_default(k) for k in SETTINGS if k not in s}, **s}  # older runs
    reference = Path(s["data"]) if isinstance(s["data"], str) else s["data"]
    settings = Settings(**{**s, "data": reference, "proxy": Proxy(**s["proxy"])})
    ssh = SshSettings(**{**data["ssh"], "known_hosts": _path(data["ssh"]["known_hosts"])})
    nodes = tuple(
        Node(**{**n, "key": _path(n["key"]), "proxy": Proxy(**n["proxy"])}) for n in data["nodes"]
    )
    return Inventory(
        Path(data["path"]),
        settings,
        ssh,
        nodes,
        data.get("document") or {},
        data.get("labels", {}),
        dict(data.get("flags") or {}),  # a run sealed before flags: none
    )


def show(value: Any) -> str:
    text = repr(str(value) if isinstance(value, Path) else value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- checking what is sealed -------------------------------------------------------------

_ABSENT = object()


def _document(inventory: Inventory) -> dict:
    """The resolved inventory as a document :func:`inventory.build` validates, written as
    an inventory file may write each value."""
    defaults = _plain(asdict(inventory.settings))
    if defaults["start_delay"] is None:
        defaults["start_delay"] = "auto"
    return {
        "defaults": defaults,
        "ssh": _plain(asdict(inventory.ssh)),
        "nodes": [_plain(asdict(n)) for n in inventory.nodes],
        "labels": dict(inventory.labels),
    }


def _comparable(inventory: Inventory) -> dict:
    return {
        "defaults": asdict(inventory.settings),
        "ssh": asdict(inventory.ssh),
        "nodes": [asdict(n) for n in inventory.nodes],
        "labels": inventory.labels,
    }


def _first_difference(found: Any, expected: Any, where: str) -> Optional[tuple[str, Any, Any]]:
    """The key path of the first place where ``found`` and ``expected`` (plain data)
    differ, with the two values there; None when they are equal."""
    if isinstance(found, dict) and isinstance(expected, dict):
        for key in [*expected, *(k for k in found if k not in expected)]:
            inner = _first_difference(
                found.get(key, _ABSENT), expected.get(key, _ABSENT), f"{where}.{key}"
            )
            if inner is not None:
                return inner
        return None
    sequences = (list, tuple)
    if (
        isinstance(found, sequences)
        and isinstance(expected, sequences)
        and len(found) == len(expected)
    ):
        for i, (one, other) in enumerate(zip(found, expected)):
            inner = _first_difference(one, other, f"{where}[{i}]")
            if inner is not None:
                return inner
        return None
    same = type(found) is type(expected) or {type(found), type(expected)} <= {int, float}
    return None if same and found == expected else (where, found, expected)


def _shown(value: Any) -> str:
    return "nothing" if value is _ABSENT else show(value)


class Seal:
    """Checks a run.json against itself: its inventory valid, and every request and the
    read plan what that inventory gives; RunAltered naming the first difference."""

    def __init__(self, run_id: str, where: Path) -> None:
        self.run_id = run_id
        self.where = where

    def altered(self, what: str) -> RunAltered:
        return RunAltered(
            f"run {self.run_id}: {self.where} was changed after the run started: {what};"
            " nothing of it is sent to the nodes: start a new run (`fab write`)"
        )

    def compare(self, found: Any, expected: Any, where: str, source: str, about: str = "") -> None:
        difference = _first_difference(found, expected, where)
        if difference is not None:
            key, was, should = difference
            raise self.altered(f"{about}{key} is {_shown(was)}, {source} gives {_shown(should)}")

    def inventory(self, inventory: Inventory) -> None:
        try:
            valid = build(_document(inventory), inventory.path)
        except InventoryError as exc:
            cause = str(exc).removeprefix(f"{inventory.path}: ")
            raise self.altered(f"its inventory is not valid: inventory: {cause}") from None
        source = "validating it"
        self.compare(_comparable(inventory), _comparable(valid), "inventory", source)

    def reference(self, inventory: Inventory, reference: ReferenceFacts) -> None:
        data = inventory.settings.data
        if isinstance(data, int):
            expected = {"path": f"generated:{data}", "bytes": data, "generated": True}
        else:
            expected = {"path": str(data), "generated": False}
        found = {k: v for k, v in asdict(reference).items() if k in expected}
        self.compare(found, expected, "reference", "its inventory's defaults.data")

    def read_plan(self, inventory: Inventory, plan: Optional[ReadPlan]) -> None:
        try:
            expected: Optional[ReadPlan] = read_plan(inventory, "cross")
        except PairingError:
            expected = None
        if plan != expected:
            self.compare(
                None if plan is None else plan.to_dict(),
                None if expected is None else expected.to_dict(),
                "read_plan",
                "its inventory",
            )
            raise self.altered("read_plan is not the pairing of its inventory's nodes")

    def requests(
        self,
        inventory: Inventory,
        reference: ReferenceFacts,
        plan: Optional[ReadPlan],
        requests: dict[str, dict[str, PhaseRequest]],
    ) -> None:
        phases = [p for p in RECORDED_PHASES if p != "read" or plan is not None]
        for phase in requests:
            if phase not in phases:
                raise self.altered(f"requests.{phase}: a phase this run does not have")
        for phase in phases:
            if phase not in requests:
                if phase in LATE_PHASES:
                    continue
                raise self.altered(f"requests.{phase}: missing")
            expected = phase_requests(inventory, phase, self.run_id, reference, plan)
            sealed = requests[phase]
            if list(sealed) != list(expected):
                raise self.altered(
                    f"requests.{phase}: nodes {', '.join(sealed) or 'none'} in run.json,"
                    f" {', '.join(expected)} in its inventory"
                )
            for nid, request in sealed.items():
                self.compare(
                    asdict(request),
                    asdict(expected[nid]),
                    f"requests.{phase}.{nid}",
                    "its inventory",
                    f"node {nid}, phase {phase}: ",
                )


#: request fields that runs sealed by an earlier parbench carry and this one no longer
#: has (``alluxio_home``: verify asked ``alluxio fs checksum``; it reads back now)
RETIRED_FIELDS = ("alluxio_home",)


def request_of(raw: Any, where: str) -> PhaseRequest:
    if isinstance(raw, dict):
        raw = {key: value for key, value in raw.items() if key not in RETIRED_FIELDS}
    try:
        return decode(PhaseRequest, raw, where).check()
    except RequestError as exc:
        raise RequestError(f"{where}: {exc}") from None
