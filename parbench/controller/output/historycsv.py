"""``fab history --csv``: the history as CSV, one row per run and phase, oldest first:
for a spreadsheet, pandas, or Apache Otava's CSV importer (a time column, metric
columns, attribute columns). docs/results.md lists the columns and their units.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Optional

from ..analysis.history import HEADLINE_OP, Entry, History

MIB = 1024 * 1024
#: the columns, in order: attributes first, then the metrics
COLUMNS = (
    "time",  # when the run began, ISO 8601 UTC
    "run_id",
    "phase",
    "config_hash",
    "labels",  # key=value;key=value, sorted
    "cluster_version",
    "aggregate_mib_s",
    "first_done_mib_s",
    "client_median_mib_s",
    "files_per_s",
    "ops_per_s",
    "p50_ms",
    "p99_ms",
    "wall_seconds",
    "clients",
    "errors",
    "valid",  # 1 or 0
    "short",  # 1: the phase was shorter than its figures need (short_phase_seconds)
)
#: the metric columns: a figure the run lacks is ``nan``, not empty (Otava's CSV importer
#: reads every cell of a metric with float(): one empty cell and it analyses nothing)
METRICS = frozenset(COLUMNS[COLUMNS.index("aggregate_mib_s") :])


def _mib(value: Optional[float]) -> Optional[float]:
    return None if value is None else value / MIB


def row(entry: Entry, details: dict[str, Any]) -> dict[str, Any]:
    """One run and phase as CSV fields (None: empty)."""
    try:
        latency = json.loads(details.get("latency") or "{}")
    except ValueError:
        latency = {}
    headline = latency.get(HEADLINE_OP.get(entry.phase, "file")) or {}
    counted = bool(headline.get("count", 1))
    wall, files = details.get("wall_seconds"), details.get("files")
    return {
        "time": entry.created,
        "run_id": entry.run_id,
        "phase": entry.phase,
        "config_hash": entry.config_hash,
        "labels": ";".join(f"{k}={v}" for k, v in sorted(entry.labels.items())),
        "cluster_version": entry.cluster,
        "aggregate_mib_s": _mib(entry.aggregate),
        "first_done_mib_s": _mib(entry.first_done),
        "client_median_mib_s": _mib(entry.client_median),
        "files_per_s": files / wall if files and wall else None,
        "ops_per_s": entry.ops_per_s,
        "p50_ms": headline["p50"] / 1000 if counted and "p50" in headline else None,
        "p99_ms": entry.p99_us / 1000 if counted and entry.p99_us is not None else None,
        "wall_seconds": wall,
        "clients": details.get("clients"),
        "errors": details.get("errors"),
        "valid": int(entry.valid),
        "short": int(entry.short),
    }


def _text(value: Any, metric: bool = False) -> str:
    if value is None:
        return "nan" if metric else ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def history_csv(db: History, entries: list[Entry]) -> str:
    """The entries (oldest first) as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        fields = row(entry, db.phase_row(entry.run_id, entry.phase))
        writer.writerow([_text(fields[c], c in METRICS) for c in COLUMNS])
    return out.getvalue()
