"""``bmf.json``: the run's headline figures in the Bencher Metric Format
(https://bencher.dev/docs/reference/bencher-metric-format), for ``bencher run --adapter
json --file results/<run>/bmf.json``.

A benchmark is ``parbench/<phase>/<config hash>``: the same name night after night for
the same benchmark (the run id is not in it), another name when what defines the
benchmark changes. Each measure has a ``value`` (the figure every other export shows);
a phase run for two or more measured iterations also has ``lower_value`` and
``upper_value``: the 95 % confidence interval of the mean of the iterations' aggregate
throughput (Student's t), for the throughput measure only.
"""

from __future__ import annotations

from typing import Any, Optional

from parbench.worker.protocol import TIMED_PHASES

from ..analysis.history import HEADLINE_OP

#: the operation whose latency stands for a timed phase
#: measure slug -> what it is (and its unit): docs/results.md lists them
MEASURES = {
    "throughput-bytes-per-s": "aggregate throughput (last done), bytes/s",
    "first-done-bytes-per-s": "throughput until the first client was done, bytes/s",
    "files-per-s": "whole files moved per second, over the phase's wall time",
    "latency-p50-ns": "median of a whole file's time (meta: of a create), ns",
    "latency-p99-ns": "p99 of a whole file's time (meta: of a create), ns",
    "ops-per-s": "metadata operations per second, all kinds (meta)",
}


def benchmark_name(phase: str, figures: dict) -> str:
    return f"parbench/{phase}/{figures.get('config_hash') or 'unknown'}"


def _metric(value: Optional[float], low: Optional[float] = None,
            high: Optional[float] = None) -> Optional[dict[str, float]]:  # fmt: skip
    if value is None:
        return None
    metric = {"value": float(value)}
    if low is not None and high is not None:
        metric["lower_value"] = float(low)
        metric["upper_value"] = float(high)
    return metric


def measures(phase: str, figures: dict) -> dict[str, dict[str, float]]:
    """A phase's measures (only those it has figures for)."""
    spread = (figures.get("iterations") or {}).get("throughput") or {}
    repeated = (spread.get("n") or 0) >= 2
    low, high = (spread.get("ci_low"), spread.get("ci_high")) if repeated else (None, None)
    first = figures.get("first_done") or {}
    wall = figures.get("wall_seconds") or 0.0
    files = figures.get("files")
    headline = (figures.get("latency") or {}).get(HEADLINE_OP.get(phase, "file")) or {}
    p50, p99 = (headline.get("p50"), headline.get("p99")) if headline.get("count") else (None, None)
    ops = figures.get("ops") or {}
    seconds = sum(k.get("seconds", 0.0) for k in ops.values())
    found: dict[str, Any] = {
        "throughput-bytes-per-s": _metric(figures.get("aggregate_throughput"), low, high)
        if phase != "meta" else None,
        "first-done-bytes-per-s": _metric(first.get("throughput")),
        "files-per-s": _metric(files / wall if files and wall > 0 else None),
        "latency-p50-ns": _metric(None if p50 is None else p50 * 1000),
        "latency-p99-ns": _metric(None if p99 is None else p99 * 1000),
        "ops-per-s": _metric(sum(k.get("count", 0) for k in ops.values()) / seconds
                             if seconds > 0 else None),
    }  # fmt: skip
    return {name: metric for name, metric in found.items() if metric is not None}


def bmf(summary: dict) -> dict[str, dict[str, dict[str, float]]]:
    """benchmark -> measure -> {value, lower_value, upper_value} for the timed phases."""
    document = {}
    for phase in TIMED_PHASES:
        figures = summary.get(phase)
        if isinstance(figures, dict):
            found = measures(phase, figures)
            if found:
                document[benchmark_name(phase, figures)] = found
    return document
