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
from datetime import datetime, timezone
from typing import Any, Optional

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from parbench.worker.results import ClientResult, Histogram

from ..analysis import adequacy, measures
from ..analysis.changepoint import ChangePoint
from ..analysis.stats import PhaseSummary, percentile
from ..run.natural import natural_key, naturally

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


#: one colour per operation on every figure of every phase (the tab10 palette)
OP_COLOURS = {
    "create": "#1f77b4",
    "open": "#17becf",
    "ttfb": "#9467bd",
    "write": "#ff7f0e",
    "read": "#2ca02c",
    "close": "#8c564b",
    "file": "#d62728",
    "mkdir": "#e377c2",
    "stat": "#bcbd22",
    "list": "#7f7f7f",
    "delete": "#393b79",
}
#: the most clients drawn one by one (bars, timeline rows); beyond, by node or not at all
LEGIBLE = 64
#: the most nodes drawn as lines of their own over time (beyond: their spread)
NODE_LINES = 8


def op_colour(op: str) -> str:
    return OP_COLOURS.get(op, "#444444")


def client_bars(summary: PhaseSummary) -> Optional[str]:
    """Each client's throughput grouped by node (nodes alternately shaded, named under
    their group), failed clients grey, the median dashed; None beyond LEGIBLE clients
    (the distributions show them)."""
    key = {n: i for i, n in enumerate(naturally(c.node for c in summary.by_client))}
    clients = sorted(summary.by_client, key=lambda c: (key[c.node], c.iteration, c.client))
    if not clients or len(clients) > LEGIBLE:
        return None
    figure, axes = _figure()
    repeated = len({c.iteration for c in clients}) > 1
    x, labels, step, groups = [], [], 0, {}
    for i, c in enumerate(clients):
        if i and c.node != clients[i - 1].node:
            step += 1  # a gap between nodes
        x.append(i + step)
        labels.append(f"{c.client}.{c.iteration}" if repeated else str(c.client))
        groups.setdefault(c.node, []).append(i + step)
    axes.bar(
        x,
        [c.throughput / MIB for c in clients],
        color=[
            ("#4c72b0" if key[c.node] % 2 == 0 else "#8fb0d9") if c.status == "ok" else "#bbbbbb"
            for c in clients
        ],
        edgecolor=["none" if c.status == "ok" else "#c0392b" for c in clients],
    )
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
    if len(x) <= 32:
        axes.set_xticks(x, labels, fontsize=8)
    else:
        axes.set_xticks([])
    for node, at in groups.items():
        axes.annotate(
            node,
            ((at[0] + at[-1]) / 2, 0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -16 if len(x) <= 32 else -4),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8 if len(groups) <= 16 else 6,
            rotation=0 if len(groups) <= 16 else 90,
        )
    axes.set_xlabel("client, grouped by node" + (" (client.iteration)" if repeated else ""),
                    labelpad=18)  # fmt: skip
    axes.set_ylabel("MiB/s")
    axes.set_title(f"{summary.phase}: throughput per client")
    return _svg(figure)


def timeline(phase: str, records: Sequence[ClientResult]) -> Optional[str]:
    """Every client's ready (dot), waiting (thin line) and moving (bar) on the controller's
    clock, from the first ready; the spread of the bars' left ends is the start skew.
    Beyond LEGIBLE clients a row per node (its first ready, first start, last end), and
    beyond LEGIBLE nodes nothing (the heatmap shows them)."""
    timed = [r for r in records if r.start > 0]
    if not timed:
        return None
    by_node = len({(r.node, r.client, r.iteration) for r in timed}) > LEGIBLE
    if by_node and len({r.node for r in timed}) > LEGIBLE:
        return None
    row_key = (lambda r: (r.node,)) if by_node else (lambda r: (r.node, r.client))
    rows = sorted({row_key(r) for r in timed}, key=lambda k: tuple(map(natural_key, k)))
    row_of = {key: i for i, key in enumerate(rows)}
    zero = min((r.ready or r.start) - r.clock_offset for r in timed)
    height = min(max(2.2, 0.22 * len(rows) + 1.2), 14.0)
    figure, axes = _figure((WIDE[0], height))
    bars: dict[tuple, list[float]] = {}
    for r in timed:
        y = row_of[row_key(r)]
        start, end = r.start - r.clock_offset - zero, r.end - r.clock_offset - zero
        ready = r.ready - r.clock_offset - zero if r.ready > 0 else start
        span = bars.setdefault((y, r.iteration), [ready, start, end, 1.0])
        span[0], span[1], span[2] = min(span[0], ready), min(span[1], start), max(span[2], end)
        span[3] = min(span[3], 1.0 if r.ok else 0.0)
    for (y, _), (ready, start, end, ok) in bars.items():
        if ready < start:
            axes.plot([ready, start], [y, y], color="#999999", lw=0.8)
            axes.plot([ready], [y], marker="o", ms=3, color="#555555")
        colour = "#4c72b0" if ok else "#c0392b"
        axes.barh(y, max(end - start, 0.0), left=start, height=0.6, color=colour)
    starts: dict[int, list[float]] = {}
    for r in timed:
        starts.setdefault(r.iteration, []).append(r.start - r.clock_offset - zero)
    skew_ms = max(max(s) - min(s) for s in starts.values()) * 1000  # the worst iteration's
    for s in starts.values():
        axes.axvline(min(s), color="#333333", lw=0.6, linestyle=":")
    names = ["/".join(map(str, k)) for k in rows]
    axes.set_yticks(range(len(rows)), names, fontsize=7 if len(rows) <= 40 else 5)
    axes.invert_yaxis()
    axes.set_xlabel("seconds from the first client ready (controller clock)")
    axes.set_title(
        f"{phase}: ready (dot), waiting, moving (bar{', per node' if by_node else ''});"
        f" start spread {skew_ms:.1f} ms"
        + (f" (the largest of {len(starts)} iterations)" if len(starts) > 1 else ""),
        fontsize=10,
    )
    axes.grid(True, axis="x", color="#dddddd", linewidth=0.6)
    return _svg(figure)


def over_time(summary: PhaseSummary) -> Optional[str]:
    """Aggregate throughput per series interval; and each node's (up to NODE_LINES), or
    beyond that the nodes' median and their 10-90 % band."""
    total = summary.series
    if not total or not total.get("bytes"):
        return None
    figure, axes = _figure()
    zero, step = float(total["start"]), float(total["interval"])

    def line(series: dict, **style: Any) -> None:
        found = measures.rates(series)  # a partial last interval over its own length
        xs = [series["start"] - zero + at + length / 2 for at, length, _ in found]
        axes.plot(xs, [rate / MIB for _, _, rate in found], **style)

    line(total, color="#222222", lw=1.8, label="all nodes", marker=".")
    nodes = sorted(
        (n for n in summary.per_node if n.series and n.series.get("bytes")),
        key=lambda n: natural_key(n.node),
    )
    if len(nodes) <= NODE_LINES:
        for i, node in enumerate(nodes):
            line(node.series or {}, color=f"C{i}", lw=0.9, label=node.node)
    else:  # the band over the whole intervals of the aggregate (its partial last one left out)
        width = len(total["bytes"]) - (1 if total.get("last") is not None else 0)
        xs = [step * (i + 0.5) for i in range(width)]
        grid = [on_grid(n.series or {}, zero, step, width) for n in nodes]
        columns = [sorted(g[k] / MIB for g in grid) for k in range(width)]
        axes.fill_between(xs, [percentile(c, 10) for c in columns],
                          [percentile(c, 90) for c in columns], color="#4c72b0", alpha=0.25,
                          lw=0, label=f"nodes 10-90 % ({len(nodes)})")  # fmt: skip
        axes.plot(xs, [percentile(c, 50) for c in columns], color="#4c72b0", lw=1.2,
                  label="node median")  # fmt: skip
    axes.set_xlabel(f"seconds (bins of {step:g} s)")
    axes.set_ylabel("MiB/s")
    axes.set_ylim(bottom=0)
    axes.set_title(f"{summary.phase}: throughput over time")
    _legend(figure, axes)
    return _svg(figure)


def on_grid(series: dict, zero: float, step: float, width: int) -> list[float]:
    """A series' bytes per second on the grid of ``width`` cells of ``step`` s from
    ``zero``, each interval's bytes spread over the cells it overlaps."""
    grid = [0.0] * width
    interval = float(series.get("interval") or step)
    length = interval / step  # one interval of the series, in cells
    for k, amount in enumerate(series.get("bytes") or []):
        at = (float(series["start"]) - zero) / step + k * length
        end = at + length
        while amount and at < end - 1e-9:
            cell = int(math.floor(at + 1e-9))
            upto = min(end, cell + 1)
            if 0 <= cell < width:
                grid[cell] += amount * (upto - at) / length
            at = upto
    return [g / step for g in grid]


def _legend(figure: Figure, axes: Any) -> None:
    """The legend under the axes, never over the data."""
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", fontsize=8,
                      ncols=min(len(handles), 5), frameon=False)  # fmt: skip


def latency(phase: str, histograms: dict[str, dict]) -> Optional[str]:
    """Each operation's latency distribution: the share of its operations per bin of a
    log scale (ms), from the merged histograms; one colour per operation (OP_COLOURS)."""
    found = {op: Histogram.from_dict(h) for op, h in histograms.items() if h and h.get("count")}
    if not found:
        return None
    figure, axes = _figure()
    low = max(min(h.min for h in found.values()), 1)
    high = max(max(h.max for h in found.values()), low + 1)
    first = math.floor(math.log10(low) * BINS_PER_DECADE)
    last = math.ceil(math.log10(high + 1) * BINS_PER_DECADE)
    edges = [10 ** (k / BINS_PER_DECADE) for k in range(first, last + 1)]
    for op, histogram in sorted(found.items()):
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
            color=op_colour(op),
            lw=1.2,
            label=f"{op} (n={histogram.count}{tail})",
        )
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("share of operations")
    axes.set_title(f"{phase}: latency per operation")
    _legend(figure, axes)
    return _svg(figure)


def trend(
    phase: str,
    runs: Sequence[str],
    values: Sequence[float],
    valid: Sequence[bool],
    points: Sequence[ChangePoint],
    unit: str = "MiB/s",
    when: Optional[Sequence[str]] = None,
) -> Optional[str]:
    """A metric over the history of one benchmark (oldest first; the last is this run),
    with each detected change point and the levels either side of it; against the runs'
    start times ``when`` (ISO 8601), or their order when a time is missing."""
    if len(values) < 2:
        return None
    figure, axes = _figure()
    dates = _dates(when or [])
    xs: list[Any] = list(dates) if len(dates) == len(values) else list(range(len(values)))
    axes.plot(xs, values, color="#888888", lw=0.8)
    for x, y, ok in zip(xs, values, valid):
        axes.plot([x], [y], marker="o", ms=5, color="C0" if ok else "white", mec="C0")
    axes.plot([xs[-1]], [values[-1]], marker="o", ms=9, mfc="none", mec="#c0392b", mew=1.5)
    bounds = [0, *[p.index for p in points], len(values)]

    def between(i: int) -> Any:  # halfway between run i - 1 and run i
        return xs[i - 1] + (xs[i] - xs[i - 1]) / 2 if 0 < i < len(xs) else xs[min(i, len(xs) - 1)]

    for p in points:
        axes.axvline(between(p.index), color="#c0392b", linestyle="--", lw=1)
        axes.annotate(
            f"{p.change * 100:+.1f} % (p={p.p_value:.2g})",
            (between(p.index), 1.0),
            xycoords=("data", "axes fraction"),
            ha="left",
            va="top",
            fontsize=8,
            color="#c0392b",
        )
    for lo, hi in zip(bounds, bounds[1:]):
        level = sum(values[lo:hi]) / max(hi - lo, 1)
        axes.plot([xs[lo], xs[hi - 1]], [level, level], color="C1", lw=1.5)
    if len(dates) == len(values):
        locator = AutoDateLocator(maxticks=10)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.set_xlabel("run start (UTC)")
    else:
        step = max(1, len(runs) // 12)
        axes.set_xticks(xs[::step], [r[:15] for r in runs[::step]], rotation=30, ha="right",
                        fontsize=7)  # fmt: skip
    axes.set_ylabel(unit)
    axes.set_ylim(bottom=0)
    axes.set_title(f"{phase}: history of this benchmark (levels, change points; this run circled)")
    return _svg(figure)


def _dates(when: Sequence[str]) -> list[datetime]:
    """The ISO 8601 times as UTC datetimes; none at all if one of them is not a time."""
    try:
        found = [datetime.fromisoformat(w.replace("Z", "+00:00")) for w in when]
    except (ValueError, AttributeError):
        return []
    return [d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in found]


def sweep(axis: str, series: dict[str, list[tuple]]) -> Optional[str]:
    """Aggregate throughput against the swept setting, one line per phase; ``series`` maps
    a phase to (point, MiB/s or None for a failed point[, (min, max) of its rounds[, its
    ratio to the baseline as text]]) in the sweep's order: a point's min-max over its
    rounds is drawn as a bar around its median, its ratio written beside it."""
    if not any(p[1] is not None for points in series.values() for p in points):
        return None
    figure, axes = _figure()
    names = list(dict.fromkeys(p[0] for points in series.values() for p in points))
    for i, (phase, points) in enumerate(sorted(series.items())):
        kept = [p for p in points if p[1] is not None]
        xs, ys = [names.index(p[0]) for p in kept], [p[1] for p in kept]
        axes.plot(xs, ys, marker="o", color=f"C{i}", label=phase)
        ranged = [(x, y, p[2]) for x, y, p in zip(xs, ys, kept) if len(p) > 2 and p[2]]
        if ranged:
            below = [y - low for _, y, (low, _) in ranged]
            above = [high - y for _, y, (_, high) in ranged]
            axes.errorbar([x for x, _, _ in ranged], [y for _, y, _ in ranged],
                          yerr=[below, above], fmt="none", ecolor=f"C{i}", capsize=4,
                          lw=1)  # fmt: skip
        for x, y, p in zip(xs, ys, kept):
            if len(p) > 3 and p[3]:
                axes.annotate(p[3], (x, y), textcoords="offset points", xytext=(6, 4),
                              fontsize=8, color=f"C{i}")  # fmt: skip
    axes.set_xticks(range(len(names)), names, rotation=20 if len(names) > 6 else 0, fontsize=8)
    axes.set_xlabel(axis)
    axes.set_ylabel("MiB/s aggregate")
    axes.set_ylim(bottom=0)
    axes.set_title(f"throughput against {axis}")
    _legend(figure, axes)
    return _svg(figure)
