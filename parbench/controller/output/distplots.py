"""The figures that read at any scale, 3 to 1,000 nodes: the spread of client throughput
per node (a box per node up to BOXES nodes, beyond that the distributions of client and
of node throughput), the ECDF of client throughput, and a heatmap of each node's
throughput over time. SVG text from matplotlib (as plots.py); None when nothing to draw."""

from __future__ import annotations

from typing import Any, Optional

from parbench.worker.results import ClientResult

from ..analysis.stats import PhaseSummary
from ..run.natural import natural_key
from .plots import MIB, WIDE, _figure, _legend, _svg, on_grid

#: the most nodes drawn as a box each
BOXES = 40
#: the most rows of the heatmap (nodes beyond it are grouped, in natural order)
HEAT_ROWS = 200


def node_boxes(summary: PhaseSummary) -> Optional[str]:
    """Per node a box of its clients' throughput (ok clients); beyond BOXES nodes the
    empirical distributions of client and of node throughput instead."""
    by_node: dict[str, list[float]] = {}
    for c in summary.by_client:
        if c.status == "ok":
            by_node.setdefault(c.node, []).append(c.throughput / MIB)
    if not by_node:
        return None
    if len(by_node) > BOXES:
        nodes = [n.throughput / MIB for n in summary.per_node if n.ok]
        clients = [v for values in by_node.values() for v in values]
        return _ecdf(
            {f"clients ({len(clients)})": clients, f"nodes ({len(nodes)})": nodes},
            f"{summary.phase}: throughput of clients and of nodes ({len(by_node)} nodes)",
        )
    names = sorted(by_node, key=natural_key)
    figure, axes = _figure()
    axes.boxplot(
        [by_node[n] for n in names],
        tick_labels=names,
        showfliers=True,
        flierprops={"marker": ".", "markersize": 3},
        medianprops={"color": "#c0392b"},
    )
    axes.tick_params(axis="x", labelsize=8 if len(names) <= 16 else 6,
                     labelrotation=0 if len(names) <= 16 else 90)  # fmt: skip
    axes.set_xlabel("node")
    axes.set_ylabel("MiB/s per client")
    axes.set_title(f"{summary.phase}: client throughput per node")
    return _svg(figure)


def client_ecdf(summary: PhaseSummary) -> Optional[str]:
    """The share of clients at or below each throughput."""
    values = [c.throughput / MIB for c in summary.by_client if c.status == "ok"]
    if not values:
        return None
    return _ecdf({f"clients ({len(values)})": values},
                 f"{summary.phase}: client throughput, cumulative")  # fmt: skip


def _ecdf(samples: dict[str, list[float]], title: str) -> str:
    figure, axes = _figure()
    for i, (label, values) in enumerate(samples.items()):
        ordered = sorted(values)
        shares = [(k + 1) / len(ordered) for k in range(len(ordered))]
        axes.step(ordered, shares, where="post", color=f"C{i}", lw=1.4, label=label)
    axes.set_xlabel("MiB/s")
    axes.set_ylabel("share at or below")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    _legend(figure, axes)
    return _svg(figure)


def heatmap(summary: PhaseSummary, records: list[ClientResult]) -> Optional[str]:
    """Each node's throughput per series interval (a row per node, naturally ordered;
    groups of nodes beyond HEAT_ROWS), from the nodes' series, or where the records have
    none from the clients' start and end (their bytes spread evenly)."""
    total = summary.series
    if total and total.get("bytes"):
        zero, step, width = float(total["start"]), float(total["interval"]), len(total["bytes"])
        rows = {n.node: on_grid(n.series or {}, zero, step, width) for n in summary.per_node}
    else:
        rows = _from_spans([r for r in records if r.ok and r.end > r.start])
        if not rows:
            return None
        step = float(rows.pop(" step")[0])
        width = len(next(iter(rows.values())))
    names = sorted(rows, key=natural_key)
    if not names or width == 0:
        return None
    group = -(-len(names) // HEAT_ROWS)
    labels, matrix = [], []
    for i in range(0, len(names), group):
        chunk = names[i : i + group]
        labels.append(chunk[0] if group == 1 else f"{chunk[0]}..{chunk[-1]}")
        matrix.append([sum(rows[n][k] for n in chunk) / len(chunk) / MIB for k in range(width)])
    height = min(max(2.4, 0.16 * len(labels) + 1.4), 12.0)
    figure, axes = _figure((WIDE[0], height))
    axes.grid(False)
    image = axes.imshow(
        matrix,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        extent=(0, width * step, len(labels) - 0.5, -0.5),
    )
    shown = _every(len(labels), 40)
    axes.set_yticks(shown, [labels[i] for i in shown], fontsize=7 if len(shown) <= 24 else 5)
    axes.set_xlabel(f"seconds (bins of {step:g} s)")
    axes.set_ylabel("node" + (f" (mean of {group})" if group > 1 else ""))
    axes.set_title(f"{summary.phase}: throughput per node over time (MiB/s)")
    figure.colorbar(image, ax=axes, label="MiB/s", pad=0.01)
    return _svg(figure)


def _every(count: int, most: int) -> list[int]:
    """At most ``most`` evenly spaced indexes of ``count`` (ticks that do not overlap)."""
    step = max(1, -(-count // most))
    return list(range(0, count, step))


def _from_spans(records: list[ClientResult]) -> dict[str, Any]:
    """Node -> bytes/s per cell of a grid over the clients' spans (controller clock), each
    client's bytes spread evenly over its span; " step" -> [the cell's seconds]."""
    if not records:
        return {}
    zero = min(r.start - r.clock_offset for r in records)
    last = max(r.end - r.clock_offset for r in records)
    step = max((last - zero) / 60, 1e-3)
    width = 60
    rows: dict[str, Any] = {}
    for r in records:
        series = {
            "start": r.start - r.clock_offset,
            "interval": r.end - r.start,
            "bytes": [r.bytes],
        }
        cells = on_grid(series, zero, step, width)
        row = rows.setdefault(r.node, [0.0] * width)
        for k, v in enumerate(cells):
            row[k] += v
    rows[" step"] = [step]
    return rows
