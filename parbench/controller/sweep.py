"""``fab sweep``: the benchmark over a matrix of settings, each point a sealed run of its
own, all sharing one sweep id.

Axes: file size (data generated on the nodes), clients per node, chunk size, write type,
read type, backend (the same workload through each access path: with ``native``, Alluxio's
own Java client, among them, every point's ratio to it unless ``--baseline`` says
otherwise). Every point's inventory is built and validated before anything runs, so a
bad value is refused naming the option and the value. A point that fails is recorded
and the sweep goes on; an interruption stops it.

A warm-up run of the first point comes first (not counted: a cold proxy makes whichever
point runs first lose), then ``rounds`` rounds, each running every point once in an order
shuffled anew from a printed, kept seed (controller/analysis/rounds.py): a point's figure
is the median of its rounds with their min..max. ``results/sweeps/<id>.json``
(``parbench.sweep/2``; ``/1`` had one run per point and no seed) lists the points with
their runs, medians, spreads and comparisons.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .analysis import rounds as shuffled
from .nodes import stopping
from .output import console
from .output.groups import template
from .run.checks import size_of
from .run.inventory import Inventory, InventoryError, build
from .run.rundir import write_atomically

SCHEMA = "parbench.sweep/2"
#: rounds of every point by default: enough for a median and a spread
DEFAULT_ROUNDS = 3
MAX_ROUNDS = 100
#: sweep option -> how a value changes the inventory document
AXES = ("size", "clients", "chunk_size", "write_type", "read_type", "backend")
#: the backend every other is compared to when a sweep runs it: the ceiling
CEILING = "native"
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
    "backend": _set_default("backend"),
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


def check_rounds(rounds: object) -> int:
    """``--rounds``: a whole number of rounds, 1..MAX_ROUNDS."""
    try:
        count = int(str(rounds))
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_ROUNDS:
        raise SweepError(f"--rounds {rounds}: expected a whole number from 1 to {MAX_ROUNDS}")
    return count


def check_seed(seed: object) -> int:
    """``--seed``: the shuffle's seed, a whole number >= 0, as a sweep printed it."""
    try:
        value = int(str(seed))
    except ValueError:
        value = -1
    if value < 0:
        raise SweepError(f"--seed {seed}: expected a whole number >= 0 (as a sweep printed it)")
    return value


def parse_baseline(text: Optional[str], found: list[Point]) -> Optional[dict[str, str]]:
    """``--baseline write_type=THROUGH[,clients=1]``: swept values every point is compared
    to (the point of these values and the point's own values on the other axes). Without
    one, a sweep over backends that include the native client compares to it."""
    if not text:
        backends = {p.values.get("backend") for p in found}
        return {"backend": CEILING} if CEILING in backends and len(backends) > 1 else None
    swept: dict[str, list[str]] = {}
    for point in found:
        for axis, value in point.values.items():
            swept.setdefault(axis, [])
            if value not in swept[axis]:
                swept[axis].append(value)
    chosen = {}
    for item in text.split(","):
        key, sep, value = (s.strip() for s in item.partition("="))
        axis = key.replace("-", "_")
        if not sep or not value:
            raise SweepError(f"--baseline {text}: expected AXIS=VALUE, e.g. write_type=THROUGH")
        if axis not in swept:
            raise SweepError(
                f"--baseline {text}: {key} is not swept here (swept: {', '.join(swept)})"
            )
        if value not in swept[axis]:
            raise SweepError(
                f"--baseline {text}: {value} is not one of --{axis.replace('_', '-')}"
                f" {','.join(swept[axis])}"
            )
        chosen[axis] = value
    return chosen


@dataclass
class RoundOutcome:
    """One run of a point (round k; 0 the warm-up): its run and headline figures, or its
    error."""

    round: int
    run_id: Optional[str] = None
    figures: Optional[dict] = None  # phase -> headline figures
    error: Optional[str] = None


@dataclass
class PointOutcome:
    """What one point of a sweep gave: a run per round."""

    point: str
    values: dict[str, str]
    runs: list[RoundOutcome] = field(default_factory=list)

    @property
    def error(self) -> Optional[str]:
        failed = [r for r in self.runs if r.error]
        if not failed:
            return None
        more = f" (and {len(failed) - 1} more round(s))" if len(failed) > 1 else ""
        return f"round {failed[0].round}: {failed[0].error}{more}"

    @property
    def run_id(self) -> Optional[str]:
        """The last run of the point (all of them: ``runs``)."""
        ids = [r.run_id for r in self.runs if r.run_id]
        return ids[-1] if ids else None


@dataclass
class Sweep:
    """A sweep as it goes: its seed, each round's order, the warm-up and every point."""

    sweep_id: str
    seed: int
    rounds: int
    orders: list[list[str]] = field(default_factory=list)
    points: list[PointOutcome] = field(default_factory=list)
    warmup: Optional[RoundOutcome] = None
    baseline: Optional[dict[str, str]] = None


def new_sweep_id() -> str:
    return time.strftime("sweep-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(2)


def headline(summary: dict) -> dict:
    """The figures of a phase a sweep's table shows."""
    keep = ("aggregate_throughput", "valid", "config_hash")
    out = {k: summary.get(k) for k in keep}
    first = summary.get("first_done")
    out["first_done_throughput"] = first["throughput"] if first else None
    out["short"] = bool(summary.get("short"))
    out["warnings"] = list(summary.get("warnings") or ())
    return out


def run(
    sweep_id: str,
    found: list[Point],
    one: Callable[[Point, dict[str, str], bool], tuple[str, dict]],
    results: Path,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    warmup: bool = True,
    baseline: Optional[dict[str, str]] = None,
) -> Sweep:
    """With ``warmup``, a run of the first point not counted; then ``rounds`` rounds,
    each running every point once, in an order shuffled anew each round from ``seed``,
    through ``one(point, labels, warm-up?) -> (run id, summary.json)``. The sweep's
    document is saved after each run. A run's failure is kept and the sweep goes on; an
    interruption stops it (after saving)."""
    sweep = Sweep(sweep_id, seed, rounds, baseline=baseline)
    sweep.points = [PointOutcome(p.name, p.values) for p in found]
    drawn = shuffled.orders(range(len(found)), rounds, seed)
    sweep.orders = [[found[i].name for i in order] for order in drawn]
    target = results / "sweeps" / f"{sweep_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)

    def attempt(point: Point, outcome: RoundOutcome) -> None:
        k = outcome.round
        labels = {"sweep": sweep_id, "round": str(k) if k else "warmup", **point.values}
        try:
            outcome.run_id, summary = one(point, labels, k == 0)
            outcome.figures = {
                phase: headline(figures)
                for phase, figures in summary.items()
                if isinstance(figures, dict) and "aggregate_throughput" in figures
            }
        except (stopping.Interrupted, KeyboardInterrupt):
            outcome.error = "interrupted"
            _save(target, sweep)
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is one round, the rest go on
            outcome.error = str(exc)
            outcome.run_id = getattr(exc, "run_id", None)
            if getattr(exc, "code", 1) in STOPPED:  # the run inside was interrupted
                _save(target, sweep)
                raise

    if warmup and found:
        console.out(f"sweep {sweep_id}: warm-up: a run of {found[0].name}, not counted")
        sweep.warmup = RoundOutcome(0)
        attempt(found[0], sweep.warmup)
        if sweep.warmup.error:
            console.out(f"sweep {sweep_id}: warm-up failed: {sweep.warmup.error}")
        _save(target, sweep)
    for k, order in enumerate(drawn, 1):
        for j, i in enumerate(order, 1):
            point = found[i]
            console.out(
                f"sweep {sweep_id}: round {k} of {rounds}, point {j} of {len(found)}: {point.name}"
            )
            sweep.points[i].runs.append(RoundOutcome(k))
            attempt(point, sweep.points[i].runs[-1])
            _save(target, sweep)
    return sweep


def _phases(outcome: PointOutcome) -> dict[str, dict]:
    """A point's figures per phase over its rounds: medians, spread, each round's."""
    by_phase: dict[str, dict[int, dict]] = {}
    for r in outcome.runs:
        for phase, figures in (r.figures or {}).items() if not r.error else ():
            by_phase.setdefault(phase, {})[r.round] = figures
    out = {}
    for phase, by_round in by_phase.items():
        rates = {k: f["aggregate_throughput"] for k, f in by_round.items()}
        rates = {k: v for k, v in rates.items() if v is not None}
        first = [v for f in by_round.values() if (v := f.get("first_done_throughput"))]
        middle = shuffled.spread(rates.values()) if rates else None
        warnings: dict[str, str] = {}  # a kind (numbers left out) -> its first round's text
        for w in (w for f in by_round.values() for w in f.get("warnings", ())):
            warnings.setdefault(template(w), w)
        out[phase] = {
            "aggregate_throughput": middle.value if middle else None,
            "first_done_throughput": statistics.median(first) if first else None,
            "spread": middle.to_dict() if middle else None,
            "by_round": {str(k): v for k, v in sorted(rates.items())},
            "valid": all(f.get("valid", True) for f in by_round.values()),
            "short": any(f.get("short") for f in by_round.values()),
            "warnings": list(warnings.values()),
            "config_hash": next(iter(by_round.values())).get("config_hash"),
        }
    return out


def _as_spread(figures: dict) -> Optional[shuffled.Spread]:
    s = figures.get("spread")
    return shuffled.Spread(s["value"], s["low"], s["high"], s["n"]) if s else None


def _compare(points: list[dict], baseline: Optional[dict[str, str]]) -> None:
    """Mark each phase's best point and those whose range overlaps it (not told apart);
    with a baseline, each point's ratio to its baseline point."""
    phases = dict.fromkeys(ph for p in points for ph in p["figures"])
    for phase in phases:
        ranked = [(p, s) for p in points if (s := _as_spread(p["figures"].get(phase) or {}))]
        if not ranked:
            continue
        best, top = max(ranked, key=lambda pair: pair[1].value)
        for p, s in ranked:
            p["figures"][phase]["best"] = p is best
            p["figures"][phase]["overlaps_best"] = p is not best and s.overlaps(top)
    if not baseline:
        return
    for p in points:
        wanted = {**p["values"], **baseline}
        base = next((b for b in points if b["values"] == wanted), None)
        for phase, figures in p["figures"].items():
            theirs = (base or {}).get("figures", {}).get(phase) or {}
            mine = {int(k): v for k, v in figures["by_round"].items()}
            against = {int(k): v for k, v in (theirs.get("by_round") or {}).items()}
            found = shuffled.ratio(mine, against)
            figures["vs_baseline"] = (
                {**found.to_dict(), "baseline": base["point"]} if found and base else None
            )


def document(sweep: Sweep) -> dict:
    """The sweep's document (``parbench.sweep/2``): its seed and orders, the warm-up and
    each point's runs and figures (median of the rounds, spread, comparisons)."""
    points = [
        {
            "point": o.point,
            "values": o.values,
            "run_id": o.run_id,
            "error": o.error,
            "runs": [asdict(r) for r in o.runs],
            "figures": _phases(o),
        }
        for o in sweep.points
    ]
    _compare(points, sweep.baseline)
    baseline = sweep.baseline
    return {
        "schema": SCHEMA,
        "sweep_id": sweep.sweep_id,
        "seed": sweep.seed,
        "rounds": sweep.rounds,
        "orders": sweep.orders,
        "warmup": asdict(sweep.warmup) if sweep.warmup else None,
        "baseline": ",".join(f"{k}={v}" for k, v in baseline.items()) if baseline else None,
        "points": points,
    }


def _save(target: Path, sweep: Sweep) -> None:
    doc = document(sweep)
    write_atomically(target, json.dumps(doc, indent=2, sort_keys=True) + "\n")
