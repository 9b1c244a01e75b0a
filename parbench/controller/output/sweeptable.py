"""A sweep's table: each point's median of its rounds with their min..max, which points
the best cannot be told from, short phases, ratios to a baseline point. Drawn from the
sweep's document (``parbench.sweep/2``; a ``/1`` document, one run a point, too)."""

from __future__ import annotations

from typing import Any, Optional

from parbench.controller.analysis.rounds import ci_level
from parbench.worker.protocol import IO_PHASES
from parbench.worker.results import one_line

from .report import _mib, _table


def _rate(figures: Optional[dict]) -> str:
    """``101.3 [95.2-110.1] ~``: median [min-max]; ``*`` the best, ``~`` not told from it."""
    if not figures or figures.get("aggregate_throughput") is None:
        return "-"
    spread = figures.get("spread")
    text = _mib(figures["aggregate_throughput"])
    if spread and spread.get("n", 1) > 1:
        text += f" [{_mib(spread['low'])}-{_mib(spread['high'])}]"
    mark = "*" if figures.get("best") else "~" if figures.get("overlaps_best") else ""
    return f"{text} {mark}".rstrip()


def _ratio(figures: Optional[dict]) -> str:
    found = (figures or {}).get("vs_baseline")
    if not found:
        return "-"
    if found.get("n", 1) > 1:
        return f"{found['value']:.2f} [{found['low']:.2f}-{found['high']:.2f}]"
    return f"{found['value']:.2f}"


def _state(point: dict) -> str:
    if point.get("error"):
        return f"failed: {one_line(point['error'], 120)}"
    figures = point.get("figures") or {}
    if not figures:
        return "no figures"
    valid = all(f.get("valid", True) for f in figures.values())
    short = [phase for phase, f in figures.items() if f.get("short")]
    return ("ok" if valid else "INVALID") + (f", short: {','.join(short)}" if short else "")


def sweep_table(doc: dict[str, Any], axes: list[str]) -> str:
    """One row per point: its values, its rounds, the median MiB/s of write and read with
    their min..max, the ratios to the baseline and whether it is valid, short or failed."""
    points = doc.get("points", [])
    phases = [p for p in IO_PHASES if any(p in (q.get("figures") or {}) for q in points)]
    phases = phases or ["write"]
    baseline = doc.get("baseline")
    rows = []
    for p in points:
        figures = p.get("figures") or {}
        runs = p.get("runs")
        done = len([r for r in runs if not r.get("error")]) if runs is not None else 1
        cells = [_rate(figures.get(phase)) for phase in phases]
        ratios = [_ratio(figures.get(phase)) for phase in phases] if baseline else []
        rows.append((*(p["values"].get(a, "-") for a in axes), str(done), *cells, *ratios,
                     _state(p)))  # fmt: skip
    header = (
        *axes, "runs", *(f"{ph} MiB/s" for ph in phases),
        *(f"{ph} / baseline" for ph in (phases if baseline else ())), "",
    )  # fmt: skip
    rounds = doc.get("rounds", 1)
    warm = (doc.get("warmup") or {}).get("run_id")
    how = (
        f"{rounds} round(s) in shuffled order, seed {doc.get('seed')}"
        + (f", after a warm-up run ({warm}, not counted)" if warm else ", no warm-up")
        if "seed" in doc
        else "one run a point"
    )
    lines = [
        f"sweep {doc.get('sweep_id')}: {len(points)} point(s), {how};"
        " MiB/s last done: median [min-max of the rounds]",
        *_table(header, rows, left=len(axes)),
    ]
    if rounds > 1:
        lines.append(
            f"  [min-max] holds the median with {ci_level(rounds):.0%} confidence;"
            " * the best point, ~ its range overlaps the best's: not told apart from it"
        )
    if baseline:
        lines.append(
            f"  / baseline: ratio of the medians to the point of {baseline} (its other values"
            " the same) [min-max of the ratios of each round]"
        )
    if any("short" in _state(p) for p in points):
        lines.append(
            "  short: the phase lasted too little to measure its throughput (the run says"
            " why); measure longer (defaults.duration: 30s, or more data)"
        )
    return "\n".join(lines)
