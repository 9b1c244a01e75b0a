"""``fab compare A B``: per phase and metric, the change from run A to run B and whether
it stands out from the noise.

Significance is asv's choice, the Mann-Whitney U test (two-sided, scipy), on the samples
each run has of a metric: the measured iterations' aggregates, or the clients' own rates
for the per-client figure. It assumes nothing about the distribution (throughput samples
are skewed and few), and with fewer than ``MIN_SAMPLES`` a side it cannot reach
significance at all, which is then said rather than guessed. A change is called only when
it is significant at ``ALPHA`` and at least ``MIN_EFFECT`` in size; otherwise it is noise.
Single-valued figures (p99 latency, ops/s) get the change alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from parbench.worker.protocol import TIMED_PHASES

from ..run.rundir import RunDir, RunNotFound, latest_id, no_latest, run_ids

ALPHA = 0.05
MIN_EFFECT = 0.05  # 5 %
MIN_SAMPLES = 3
#: metric -> True when higher is better
METRICS = {
    "aggregate": True,
    "first_done": True,
    "client_median": True,
    "p99_latency": False,
    "ops_per_s": True,
}


@dataclass(frozen=True)
class Change:
    phase: str
    metric: str
    before: float
    after: float
    change: float  # (after - before) / before
    p_value: Optional[float]  # None: no test (single values or too few samples)
    verdict: str  # "better", "worse", "noise", "no test"
    samples: tuple[int, int]
    short: bool = False  # either run's phase was short (controller/analysis/adequacy.py)


def samples_of(figures: dict) -> dict[str, list[float]]:
    """A phase summary's samples per metric (one value where it has only one)."""
    out: dict[str, list[float]] = {}
    measured = (figures.get("iterations") or {}).get("measured") or []
    aggregates = [i["aggregate_throughput"] for i in measured if i.get("aggregate_throughput")]
    if aggregates:
        out["aggregate"] = aggregates
    elif figures.get("aggregate_throughput"):
        out["aggregate"] = [figures["aggregate_throughput"]]
    first = figures.get("first_done") or {}
    if first.get("throughput"):
        out["first_done"] = [first["throughput"]]
    rates = [c["throughput"] for c in figures.get("by_client", []) if c.get("status") == "ok"]
    if rates:
        out["client_median"] = rates
    latency = (figures.get("latency") or {}).get("file") or (figures.get("latency") or {}).get(
        "create"
    )
    if latency and latency.get("p99") is not None:  # None: too few samples for a p99
        out["p99_latency"] = [latency["p99"]]
    ops = figures.get("ops") or {}
    if ops:
        count = sum(o.get("count", 0) for o in ops.values())
        seconds = sum(o.get("seconds", 0.0) for o in ops.values())
        if seconds > 0:
            out["ops_per_s"] = [count / seconds]
    return out


def compare_phase(phase: str, before: dict, after: dict) -> list[Change]:
    """Every metric both summaries of ``phase`` have."""
    a, b = samples_of(before), samples_of(after)
    short = bool(before.get("short") or after.get("short"))
    return [
        replace(_change(phase, metric, a[metric], b[metric]), short=short)
        for metric in METRICS
        if metric in a and metric in b
    ]


def _centre(metric: str, values: Sequence[float]) -> float:
    return statistics.median(values) if metric == "client_median" else statistics.fmean(values)


def _change(phase: str, metric: str, a: Sequence[float], b: Sequence[float]) -> Change:
    before, after = _centre(metric, a), _centre(metric, b)
    change = (after - before) / before if before else 0.0
    p_value: Optional[float] = None
    if min(len(a), len(b)) >= MIN_SAMPLES:
        from scipy.stats import mannwhitneyu  # here: importing scipy takes a while

        p_value = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    higher_is_better = METRICS[metric]
    if p_value is None:
        verdict = "no test"
    elif p_value < ALPHA and abs(change) >= MIN_EFFECT:
        verdict = "better" if (change > 0) == higher_is_better else "worse"
    else:
        verdict = "noise"
    return Change(phase, metric, before, after, change, p_value, verdict, (len(a), len(b)))


class CompareError(ValueError):
    """Runs that cannot be compared as asked; the message says why."""


def resolve(root: Path, name: str) -> str:
    """A run id from ``name``: an id, ``latest`` (the run ``results/latest`` names when it
    measured something, else the newest that did), or ``previous`` (the newest run
    before it that measured something). Runs that measured nothing (a failed push, a
    refused lock) are never ``latest`` or ``previous``."""
    if name not in ("latest", "previous"):
        return name
    link = latest_id(root)
    if link is not None and not (root / link).is_dir():
        raise RunNotFound(no_latest(root))
    runs = run_ids(root, only_measured=True)
    current = link if link in runs else (runs[-1] if runs else None)
    if current is None:
        raise CompareError(f"no run in {root}/ has measured anything yet: run `fab write`")
    if name == "latest":
        return current
    earlier = [r for r in runs if r < current]
    if not earlier:
        raise CompareError(
            f"no run before {current} in {root}/ measured anything: `previous` needs two"
        )
    return earlier[-1]


def compare_runs(
    root: Path, first: str, second: str, anyway: bool = False
) -> tuple[str, str, list[Change]]:
    """(run A, run B, changes of every phase both have); CompareError when they have no
    phase in common, or when a phase's config hash differs and not ``anyway``."""
    a_id, b_id = resolve(root, first), resolve(root, second)
    a = RunDir.open(root, a_id).read_doc("summary.json", {})
    b = RunDir.open(root, b_id).read_doc("summary.json", {})
    common = [p for p in TIMED_PHASES if isinstance(a.get(p), dict) and isinstance(b.get(p), dict)]
    if not common:
        raise CompareError(f"runs {a_id} and {b_id} have no measured phase in common")
    differ = [p for p in common if a[p].get("config_hash") != b[p].get("config_hash")]
    if differ and not anyway:
        phase = differ[0]
        raise CompareError(
            f"{phase}: runs {a_id} and {b_id} measured different things (config"
            f" {a[phase].get('config_hash') or '?'} vs {b[phase].get('config_hash') or '?'});"
            " compare anyway with --anyway"
        )
    changes = [c for p in common for c in compare_phase(p, a[p], b[p])]
    return a_id, b_id, changes
