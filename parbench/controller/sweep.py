"""``fab sweep``: the benchmark over a matrix of settings, each point a sealed run of its
own, all sharing one sweep id.

Axes: file size (data generated on the nodes), clients per node, chunk size, write type,
read type. Every point's inventory is built and validated before anything runs, so a
bad value is refused naming the option and the value. A point that fails is recorded
and the sweep goes on; an interruption stops it. ``results/sweeps/<id>.json``
(``parbench.sweep/1``) lists the points with their run ids and headline figures.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from .nodes import stopping
from .output import console
from .run.checks import size_of
from .run.inventory import Inventory, InventoryError, build
from .run.rundir import write_atomically

SCHEMA = "parbench.sweep/1"
#: sweep option -> how a value changes the inventory document
AXES = ("size", "clients", "chunk_size", "write_type", "read_type")
MAX_POINTS = 1000
#: exit codes of an interrupted phase: they stop the sweep
STOPPED = (130, 143)


class SweepError(ValueError):
    """A sweep that cannot run; the message names the option and value."""


def _set_default(key: str) -> Callable[[dict, str], None]:
    def apply(doc: dict, value: str) -> None:
        doc.setdefault("defaults", {})
        if doc["defaults"] is None:
            doc["defaults"] = {}
        doc["defaults"][key] = value

    return apply


def _set_size(doc: dict, value: str) -> None:
    """``--size``: always a size in the inventory's grammar (never a file name)."""
    size = size_of(value)
    if size is None:
        raise SweepError(
            f"--size {value}: expected a size like 64MiB or 1048576 (units B, KiB, MiB, GiB,"
            " KB, MB, GB; data generated on the nodes)"
        )
    if size != size.to_integral_value():
        raise SweepError(f"--size {value}: expected a whole number of bytes")
    # bytes as an int, which the inventory takes as a size (checking its range), not a file
    _set_default("data")(doc, int(size))  # type: ignore[arg-type]


def _set_clients(doc: dict, value: str) -> None:
    try:
        count = int(value)
    except ValueError:
        raise SweepError(f"--clients {value}: expected a whole number") from None
    _set_default("clients")(doc, count)  # type: ignore[arg-type]
    for node in doc.get("nodes") or []:
        if isinstance(node, dict):
            node.pop("clients", None)


_APPLY: dict[str, Callable[[dict, str], None]] = {
    "size": _set_size,
    "clients": _set_clients,
    "chunk_size": _set_default("chunk_size"),
    "write_type": _set_default("write_type"),
    "read_type": _set_default("read_type"),
}


@dataclass(frozen=True)
class Point:
    values: dict[str, str]  # axis -> value as given
    inventory: Inventory

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values.items())


def points(base: Inventory, axes: dict[str, list[str]]) -> list[Point]:
    """Every combination of the axes' values, each an inventory checked now."""
    axes = {k: v for k, v in axes.items() if v}
    if not axes:
        raise SweepError(f"give at least one of --{', --'.join(a.replace('_', '-') for a in AXES)}")
    count = 1
    for values in axes.values():
        count *= len(values)
    if count > MAX_POINTS:
        raise SweepError(f"{count} points: at most {MAX_POINTS}")
    found = []
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        doc = copy.deepcopy(base.raw)
        for axis, value in values.items():
            _APPLY[axis](doc, value)
        try:
            inventory = build(doc, base.path)
        except InventoryError as exc:
            option = " ".join(f"--{a.replace('_', '-')} {v}" for a, v in values.items())
            raise SweepError(f"{option}: {exc}") from None
        found.append(Point(values, inventory))
    return found


def parse_axes(given: dict[str, Optional[str]]) -> dict[str, list[str]]:
    """Comma-separated option values as lists; an empty value is refused."""
    axes = {}
    for axis, text in given.items():
        if text is None:
            continue
        values = [v.strip() for v in text.split(",")]
        if any(not v for v in values):
            raise SweepError(f"--{axis.replace('_', '-')}: an empty value in {text!r}")
        axes[axis] = values
    return axes


@dataclass
class PointOutcome:
    """What one point of a sweep gave: its run and headline figures, or its error."""

    point: str
    values: dict[str, str]
    run_id: Optional[str] = None
    figures: Optional[dict] = None  # phase -> headline figures
    error: Optional[str] = None


def new_sweep_id() -> str:
    return time.strftime("sweep-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(2)


def headline(summary: dict) -> dict:
    """The figures of a phase a sweep's table shows."""
    keep = ("aggregate_throughput", "valid", "config_hash")
    out = {k: summary.get(k) for k in keep}
    first = summary.get("first_done")
    out["first_done_throughput"] = first["throughput"] if first else None
    return out


def run(
    sweep_id: str,
    found: list[Point],
    one: Callable[[Point, dict[str, str]], tuple[str, dict]],
    results: Path,
) -> list[PointOutcome]:
    """Run every point through ``one(point, labels) -> (run id, summary.json)``; save
    the sweep's document after each point. A point's failure is kept and the sweep goes
    on; an interruption stops it (after saving)."""
    outcomes: list[PointOutcome] = []
    target = results / "sweeps" / f"{sweep_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    for index, point in enumerate(found, 1):
        console.out(f"sweep {sweep_id}: point {index} of {len(found)}: {point.name}")
        outcome = PointOutcome(point.name, point.values)
        outcomes.append(outcome)
        labels = {"sweep": sweep_id, **{k: v for k, v in point.values.items()}}
        try:
            outcome.run_id, summary = one(point, labels)
            outcome.figures = {
                phase: headline(figures)
                for phase, figures in summary.items()
                if isinstance(figures, dict) and "aggregate_throughput" in figures
            }
        except (stopping.Interrupted, KeyboardInterrupt):
            outcome.error = "interrupted"
            _save(target, sweep_id, outcomes)
            raise
        except Exception as exc:  # noqa: BLE001 - a failed point is one row, the rest go on
            outcome.error = str(exc)
            outcome.run_id = getattr(exc, "run_id", None)
            if getattr(exc, "code", 1) in STOPPED:  # the run inside was interrupted
                _save(target, sweep_id, outcomes)
                raise
        _save(target, sweep_id, outcomes)
    return outcomes


def document(sweep_id: str, outcomes: list[PointOutcome]) -> dict:
    """The sweep's document (``parbench.sweep/1``): its points, as saved and as drawn."""
    return {"schema": SCHEMA, "sweep_id": sweep_id, "points": [asdict(o) for o in outcomes]}


def _save(target: Path, sweep_id: str, outcomes: list[PointOutcome]) -> None:
    doc = document(sweep_id, outcomes)
    write_atomically(target, json.dumps(doc, indent=2, sort_keys=True) + "\n")
