"""Whether a phase's figures can carry what they seem to say, and the warnings when not.

- A **percentile** q of n samples is reported only when ``n * (1 - q/100) >= 1``: at least
  one sample lies above it. With fewer it is the largest sample (or an interpolation
  towards it), an estimate of the maximum, not of the tail: p90 needs n >= 10, p99
  n >= 100, p99.9 n >= 1000. An unsupported one is None (JSON null, the console ``-``);
  the count stays beside it.
- A phase is **short** when its measured wall time (the iterations' spans added up) is
  below ``short_phase_seconds``, or spans fewer than ``MIN_INTERVALS`` intervals of its
  throughput series: its throughput is then mostly the start and the end (skew, opening,
  the last client's close), not the steady state. It is marked (``short``) and warned
  about, never made invalid (``min_phase_seconds`` does that, controller/analysis/validity.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from parbench.worker.protocol import BY_PHASE
from parbench.worker.results import PERCENTILES, Histogram

#: fewer series intervals than this and a phase is short, whatever its seconds
MIN_INTERVALS = 3


def supported(n: int, q: float) -> bool:
    """Whether ``n`` samples support the ``q``-th percentile (0..100)."""
    return n * (100 - q) >= 100 - 1e-9  # n * (1 - q/100) >= 1, exact for 99.9


def needed(q: float) -> int:
    """The fewest samples that support the ``q``-th percentile."""
    return next(n for n in range(1, 10**7) if supported(n, q))


def percentiles(merged: dict[str, Histogram]) -> dict[str, dict]:
    """Operation -> its histogram's summary (us), unsupported percentiles None."""
    out = {}
    for op, histogram in merged.items():
        row: dict[str, Any] = histogram.summary()
        for q in PERCENTILES:
            if not supported(histogram.count, q):
                row[f"p{q:g}"] = None
        out[op] = row
    return out


def _wall(summary: Any) -> float:
    measured = summary.iterations.measured if summary.iterations else ()
    return sum(it.wall_seconds for it in measured)


def short_reason(summary: Any, short_seconds: float) -> str | None:
    """Why ``summary`` (a PhaseSummary or MetaSummary) is too short, or None."""
    wall = _wall(summary)
    if not summary.ok or wall <= 0:
        return None  # nothing was measured: the errors say so
    series = getattr(summary, "series", None)
    interval = float(series["interval"]) if series and series.get("interval") else 0.0
    why = []
    if wall < short_seconds:
        why.append(f"< short_phase_seconds {short_seconds:g} s")
    if interval and wall < MIN_INTERVALS * interval:
        why.append(f"{wall / interval:.1f} series intervals of {interval:g} s, < {MIN_INTERVALS}")
    if not why:
        return None
    return (
        f"short: {summary.phase} lasted {wall:.3g} s ({'; '.join(why)}): its throughput is"
        " mostly start and end; measure longer (defaults.duration: 30s, or more data)"
    )


def latency_warning(latency: dict[str, dict], op: str) -> str | None:
    """One line when the p99 of ``op`` (the phase's headline operation, the latency its
    block shows) is left out, or None: the others' "-" in the latency table says itself."""
    row = latency.get(op) or {}
    if not row.get("count") or row.get("p99", 0) is not None:
        return None
    return (
        f"too few samples for the {op} latency p99 (n={row['count']};"
        f" p99 needs n >= {needed(99)}): shown as -"
    )


def warnings_of(summary: Any, short_seconds: float) -> tuple[str, ...]:
    """The one-line warnings of a summary: short, then unsupported percentiles."""
    op = BY_PHASE[summary.phase].headline_op if summary.phase in BY_PHASE else "file"
    found = (short_reason(summary, short_seconds), latency_warning(summary.latency, op))
    return tuple(w for w in found if w)


def warned(summary: Any, short_seconds: float) -> Any:
    """``summary`` with its warnings and its ``short`` marker."""
    return replace(
        summary,
        warnings=warnings_of(summary, short_seconds),
        short=short_reason(summary, short_seconds) is not None,
    )
