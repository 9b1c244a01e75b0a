"""The report's figures as SVG text, drawn by matplotlib.

Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot and its global
state, so drawing is safe from any thread) and saved as SVG with glyphs as paths: the page
needs no font and no network to show them. Each function returns None when there is
nothing to draw (a phase without records, latency switched off, a history of one run).
Rates are MiB/s (2**20 bytes), latencies milliseconds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Optional

from matplotlib.figure import Figure

from worker.results import ClientResult, Histogram

from ..analysis import adequacy, measures
from ..analysis.changepoint import ChangePoint
from ..analysis.stats import PhaseSummary

MIB = 1024 * 1024
WIDE = (9.0, 3.6)  # inches; 100 dpi in the SVG's units
#: bins per decade of the latency histograms (the recorded buckets are finer: 256 per
#: power of two; a plot that fine shows noise)
BINS_PER_DECADE = 24


def _figure(size: tuple[float, float] = WIDE) -> tuple[Figure, Any]:
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure, axes


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def client_bars(summary: PhaseSummary) -> Optional[str]:
    """Each client's throughput, grouped and coloured by node, with the median dashed."""
    clients = sorted(summary.by_client, key=lambda c: (c.node, c.iteration, c.client))
    if not clients:
        return None
    figure, axes = _figure()
    nodes = sorted({c.node for c in clients})
    colours = {n: f"C{i % 10}" for i, n in enumerate(nodes)}
    repeated = len({c.iteration for c in clients}) > 1
    x, labels, step = [], [], 0
    for i, c in enumerate(clients):
        if i and c.node != clients[i - 1].node:
            step += 1  # a gap between nodes
        x.append(i + step)
        labels.append(f"{c.client}.{c.iteration}" if repeated else str(c.client))
    bars = axes.bar(
        x,
        [c.throughput / MIB for c in clients],
        color=[colours[c.node] if c.status == "ok" else "#bbbbbb" for c in clients],
        edgecolor=["none" if c.status == "ok" else "#c0392b" for c in clients],
    )
    for node in nodes:
        bars[[c.node for c in clients].index(node)].set_label(node)
    if summary.per_client.n:
        axes.axhline(summary.per_client.median / MIB, color="#333333", linestyle="--", lw=1)
        axes.annotate(
            f"median {summary.per_client.median / MIB:.1f}",
            (1.0, summary.per_client.median / MIB),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
        )
    axes.set_xticks(x, labels, fontsize=7 if len(x) > 24 else 9)
    axes.set_xlabel("client (by node)" + (".iteration" if repeated else ""))
    axes.set_ylabel("MiB/s")
    axes.set_title(f"{summary.phase}: throughput per client")
    axes.legend(fontsize=8, loc="lower right", ncols=min(len(nodes), 6))
    return _svg(figure)


def timeline(phase: str, records: Sequence[ClientResult]) -> Optional[str]:
    """Every client's ready (dot), waiting (thin line) and moving (bar) on the controller's
    clock, from the first ready; the spread of the bars' left ends is the start skew."""
    timed = sorted((r for r in records if r.start > 0), key=lambda r: (r.node, r.client))
    if not timed:
        return None
    rows = sorted({(r.node, r.client) for r in timed})
    row_of = {key: i for i, key in enumerate(rows)}
    zero = min((r.ready or r.start) - r.clock_offset for r in timed)
    height = min(max(2.2, 0.22 * len(rows) + 1.2), 14.0)
    figure, axes = _figure((WIDE[0], height))
    nodes = sorted({r.node for r in timed})
    for r in timed:
        y = row_of[(r.node, r.client)]
        start, end = r.start - r.clock_offset - zero, r.end - r.clock_offset - zero
        colour = f"C{nodes.index(r.node) % 10}" if r.ok else "#c0392b"
        if r.ready > 0:
            ready = r.ready - r.clock_offset - zero
            axes.plot([ready, start], [y, y], color="#999999", lw=0.8)
            axes.plot([ready], [y], marker="o", ms=3, color="#555555")
        axes.barh(y, max(end - start, 0.0), left=start, height=0.6, color=colour)
    starts: dict[int, list[float]] = {}
    for r in timed:
        starts.setdefault(r.iteration, []).append(r.start - r.clock_offset - zero)
    skew_ms = max(max(s) - min(s) for s in starts.values()) * 1000  # the worst iteration's
    for s in starts.values():
        axes.axvline(min(s), color="#333333", lw=0.6, linestyle=":")
    axes.set_yticks(range(len(rows)), [f"{n}/{c}" for n, c in rows], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("seconds from the first client ready (controller clock)")
    axes.set_title(
        f"{phase}: ready (dot), waiting, moving (bar); start spread {skew_ms:.1f} ms"
        + (f" (the largest of {len(starts)} iterations)" if len(starts) > 1 else ""),
        fontsize=10,
    )
    axes.grid(True, axis="x", color="#dddddd", linewidth=0.6)
    return _svg(figure)


def over_time(summary: PhaseSummary) -> Optional[str]:
    """Aggregate throughput per series interval, and each node's."""
    total = summary.series
    if not total or not total.get("bytes"):
        return None
    figure, axes = _figure()

    def line(series: dict, zero: float, **style: Any) -> None:
        found = measures.rates(series)  # a partial last interval over its own length
        xs = [series["start"] - zero + at + length / 2 for at, length, _ in found]
        axes.plot(xs, [rate / MIB for _, _, rate in found], **style)

    zero = float(total["start"])
    line(total, zero, color="#222222", lw=1.8, label="all nodes", marker=".")
    for i, node in enumerate(summary.per_node):
        if node.series and node.series.get("bytes"):
            line(node.series, zero, color=f"C{i % 10}", lw=0.9, label=node.node)
    axes.set_xlabel(f"seconds (bins of {float(total['interval']):g} s)")
    axes.set_ylabel("MiB/s")
    axes.set_ylim(bottom=0)
    axes.set_title(f"{summary.phase}: throughput over time")
    axes.legend(fontsize=8, loc="upper right")
    return _svg(figure)


def latency(phase: str, histograms: dict[str, dict]) -> Optional[str]:
    """Each operation's latency distribution: the share of its operations per bin of a
    log scale (ms), from the merged histograms."""
    found = {op: Histogram.from_dict(h) for op, h in histograms.items() if h and h.get("count")}
    if not found:
        return None
    figure, axes = _figure()
    low = max(min(h.min for h in found.values()), 1)
    high = max(max(h.max for h in found.values()), low + 1)
    first = math.floor(math.log10(low) * BINS_PER_DECADE)
    last = math.ceil(math.log10(high + 1) * BINS_PER_DECADE)
    edges = [10 ** (k / BINS_PER_DECADE) for k in range(first, last + 1)]
    for i, (op, histogram) in enumerate(sorted(found.items())):
        counts = [0.0] * (len(edges) - 1)
        for bucket_low, bucket_high, count in histogram.bins():
            middle = max((bucket_low + bucket_high) / 2, edges[0])
            k = min(int(math.log10(middle) * BINS_PER_DECADE) - first, len(counts) - 1)
            counts[max(k, 0)] += count / histogram.count
        p99 = histogram.percentile(99) / 1000
        tail = f", p99 {p99:.3g} ms" if adequacy.supported(histogram.count, 99) else ""
        axes.stairs(
            counts,
            [e / 1000 for e in edges],
            color=f"C{i % 10}",
            lw=1.2,
            label=f"{op} (n={histogram.count}{tail})",
        )
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("share of operations")
    axes.set_title(f"{phase}: latency per operation")
    axes.legend(fontsize=8, loc="upper right")
    return _svg(figure)


def trend(
    phase: str,
    runs: Sequence[str],
    values: Sequence[float],
    valid: Sequence[bool],
    points: Sequence[ChangePoint],
    unit: str = "MiB/s",
) -> Optional[str]:
    """A metric over the history of one benchmark (oldest first; the last is this run),
    with each detected change point and the levels either side of it."""
    if len(values) < 2:
        return None
    figure, axes = _figure()
    xs = list(range(len(values)))
    axes.plot(xs, values, color="#888888", lw=0.8)
    for x, y, ok in zip(xs, values, valid):
        axes.plot([x], [y], marker="o", ms=5, color="C0" if ok else "white", mec="C0")
    axes.plot([xs[-1]], [values[-1]], marker="o", ms=9, mfc="none", mec="#c0392b", mew=1.5)
    bounds = [0, *[p.index for p in points], len(values)]
    for p in points:
        axes.axvline(p.index - 0.5, color="#c0392b", linestyle="--", lw=1)
        axes.annotate(
            f"{p.change * 100:+.1f} % (p={p.p_value:.2g})",
            (p.index - 0.5, 1.0),
            xycoords=("data", "axes fraction"),
            ha="left",
            va="top",
            fontsize=8,
            color="#c0392b",
        )
    for lo, hi in zip(bounds, bounds[1:]):
        level = sum(values[lo:hi]) / max(hi - lo, 1)
        axes.plot([lo - 0.4, hi - 0.6], [level, level], color="C1", lw=1.5)
    step = max(1, len(runs) // 12)
    axes.set_xticks(xs[::step], [r[:15] for r in runs[::step]], rotation=30, ha="right", fontsize=7)
    axes.set_ylabel(unit)
    axes.set_ylim(bottom=0)
    axes.set_title(f"{phase}: history of this benchmark (levels, change points; this run circled)")
    return _svg(figure)


def sweep(axis: str, series: dict[str, list[tuple[str, Optional[float]]]]) -> Optional[str]:
    """Aggregate throughput against the swept setting, one line per phase; ``series`` maps
    a phase to (point, MiB/s or None for a failed point) in the sweep's order."""
    if not any(v is not None for points in series.values() for _, v in points):
        return None
    figure, axes = _figure()
    names = list(dict.fromkeys(p for points in series.values() for p, _ in points))
    for i, (phase, points) in enumerate(sorted(series.items())):
        xs = [names.index(p) for p, v in points if v is not None]
        axes.plot(
            xs, [v for _, v in points if v is not None], marker="o", color=f"C{i}", label=phase
        )
    axes.set_xticks(range(len(names)), names, rotation=20 if len(names) > 6 else 0, fontsize=8)
    axes.set_xlabel(axis)
    axes.set_ylabel("MiB/s aggregate")
    axes.set_ylim(bottom=0)
    axes.set_title(f"throughput against {axis}")
    axes.legend(fontsize=8)
    return _svg(figure)
