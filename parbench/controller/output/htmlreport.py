"""A run's page, ``results/<run>/report.html``: one self-contained file a person opens in
the morning, offline (inline CSS, figures as SVG data URIs, no script, nothing fetched).

Top down: what ran and with what, the verdict (failures, verification, validity, the
regression check), then per phase its table, per-client throughput by node, the
ready/start/end timeline, throughput over time, latency and the history of the same
benchmark with its change points. A sweep gets a page of its own with throughput against
the swept setting.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any, Optional

from parbench.worker.protocol import IO_PHASES, VERIFY_PHASES
from parbench.worker.results import ClientResult, one_line

from ..analysis.changepoint import change_points
from ..analysis.history import History, HistoryError
from ..analysis.metastats import MetaSummary
from ..analysis.stats import PhaseSummary
from ..run.natural import naturally
from ..run.rundir import RunDir, write_atomically
from . import distplots, plots, sweeptable
from . import htmltables as tables

MIB = 1024 * 1024
NAME = "report.html"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ddd;margin-top:32px}
h3{font-size:15px;margin-bottom:4px}
table.data{border-collapse:collapse;margin:8px 16px 8px 0;font-size:13px}
table.data th,table.data td{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
table.data td.n{text-align:right;font-variant-numeric:tabular-nums}
table.data caption{text-align:left;color:#666;font-size:12px}
.pair{display:flex;flex-wrap:wrap;align-items:flex-start}
table.facts td{padding:1px 12px 1px 0;vertical-align:top}table.facts td:first-child{color:#666}
.verdict{padding:10px 14px;border-radius:4px;font-weight:600;margin:12px 0}
.ok{background:#e6f4ea;color:#1e6b34}.bad{background:#fdecea;color:#a3261b}
.warn{background:#fff4e0;color:#8a5200}
figure{margin:12px 0}figure img{max-width:100%;height:auto;display:block}
figcaption{color:#666;font-size:12px}
"""


def page_html(title: str, body: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{escape(title)}</title>"
        f"<link rel=icon href='data:,'><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def figure(svg: Optional[str], caption: str) -> str:
    """An SVG figure as an image of its own (its ids and styles cannot meet the page's)."""
    if svg is None:
        return ""
    data = base64.b64encode(svg.encode()).decode()
    return (
        f"<figure><img alt='{escape(caption)}' src='data:image/svg+xml;base64,{data}'>"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _verdict(kind: str, lines: Sequence[str]) -> str:
    return f"<div class='verdict {kind}'>" + "<br>".join(escape(x) for x in lines) + "</div>"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table class=facts>{cells}</table>"


def run_page(
    run: RunDir,
    summaries: dict[str, PhaseSummary | MetaSummary],
    records: dict[str, list[ClientResult]],
    failures: Sequence[str],
    history: Optional[Path],
) -> str:
    """The page of ``run`` from its summaries, records (by phase, verify ones included),
    the lines of its node failures (failures.json is read for the nodes) and the history
    database (None: no trend). The verdict and the headline first, then the settings,
    verification, node failures, and per phase its tables and figures."""
    sealed = run.read_doc("run.json", {}) or {}
    failed = run.read_doc("failures.json", {}) or {}
    body = [f"<h1>parbench run {escape(run.run_id)}</h1>"]
    body += _verdicts(run, summaries, records, failures, failed)
    if summaries:
        body.append(tables.headline(summaries))
    body += ["<h2>Settings</h2>", tables.settings(sealed, run.read_doc("cluster.json") or {},
                                                  summaries)]  # fmt: skip
    verified = [r for phase in VERIFY_PHASES for r in records.get(phase, [])]
    body.append("<h2>Verification</h2>")
    body.append(tables.verification(verified) if verified else "<p>not verified</p>")
    if any(failed.values()):  # {"write": [], ...}: no node failed
        body += ["<h2>Node failures</h2>", tables.failed_nodes(failed)]
    elif failures:
        body += ["<h2>Node failures</h2>"] + [f"<p>{escape(line)}</p>" for line in failures]
    for phase, summary in summaries.items():
        body.append(f"<h2>{escape(phase)}</h2>")
        warnings = getattr(summary, "warnings", ()) or ()
        if warnings:
            body.append(_verdict("warn", [f"{phase}: {w}" for w in warnings]))
        body += _phase_tables(summary)
        if isinstance(summary, PhaseSummary):
            body += _phase_figures(summary, records.get(phase, []))
        body.append(_trend(run, phase, summary, history))
    return page_html(f"parbench {run.run_id}", body)


def _phase_tables(summary: PhaseSummary | MetaSummary) -> list[str]:
    if isinstance(summary, MetaSummary):
        return [tables.meta(summary), tables.latency(summary), tables.errors(summary)]
    return [
        tables.slowest(summary),
        tables.nodes(summary),
        tables.latency(summary),
        tables.iterations(summary),
        tables.errors(summary),
    ]


def _verdicts(
    run: RunDir,
    summaries: dict[str, PhaseSummary | MetaSummary],
    records: dict[str, list[ClientResult]],
    failures: Sequence[str],
    failed: dict[str, list[dict]],
) -> list[str]:
    out = []
    bad = [r for recs in records.values() for r in recs if not r.ok]
    nodes = naturally(f.get("node", "?") for found in failed.values() for f in found)
    if failures or bad or nodes:
        count = len(nodes) if failed else len(failures)
        lines = [f"FAILED: {len(bad)} record(s) not ok, {count} node failure(s)"
                 + (f" ({', '.join(nodes[:10])}{' ...' if len(nodes) > 10 else ''})"
                    if nodes else "")]  # fmt: skip
        lines += [
            f"{r.phase} {r.node}/{r.client} {r.path}: {r.status}: {one_line(r.error or '')}"
            for r in bad[:10]
        ]
        if len(bad) > 10:
            lines.append(f"... and {len(bad) - 10} more (below)")
        out.append(_verdict("bad", lines))
    elif summaries:
        verified = "verified" if any(p.startswith("verify") for p in records) else "not verified"
        out.append(
            _verdict("ok", [f"every record ok ({sum(map(len, records.values()))}), {verified}"])
        )
    else:
        out.append(_verdict("warn", ["no phase has run"]))
    invalid = [f"{p}: INVALID: {'; '.join(s.invalid)}" for p, s in summaries.items() if s.invalid]
    if invalid:
        out.append(_verdict("warn", invalid))
    checked = run.read_doc("check.json")
    if checked:
        lines = [r["line"] for r in checked.get("regressions", [])]
        if lines:
            out.append(_verdict("bad", lines))
        else:
            out.append(_verdict("ok", [f"check: no regression in {checked.get('runs', 0)} run(s)"]))
        if checked.get("notes"):
            out.append(_verdict("warn", [f"check: {n}" for n in checked["notes"]]))
    return out


def _phase_figures(summary: PhaseSummary, records: list[ClientResult]) -> list[str]:
    """The distributions first (they read at any scale), then what is drawn one client
    at a time only while legible, then over time and latency."""
    phase = summary.phase
    many = len({r.node for r in records}) > distplots.BOXES
    return [
        figure(
            distplots.node_boxes(summary),
            f"{phase}: client throughput "
            + ("of clients and of nodes, cumulative" if many else "per node (box per node)"),
        ),
        figure(distplots.client_ecdf(summary), f"{phase}: client throughput, cumulative"),
        figure(distplots.heatmap(summary, records), f"{phase}: throughput per node over time"),
        figure(plots.client_bars(summary), f"{phase}: each client's throughput, by node"),
        figure(
            plots.timeline(phase, records),
            f"{phase}: when each client (or node) was ready, started and ended",
        ),
        figure(
            plots.over_time(summary), f"{phase}: throughput over time, all nodes and their spread"
        ),
        figure(plots.latency(phase, summary.histograms), f"{phase}: latency per operation"),
    ]


#: phase kind -> (history metric, scale, unit) drawn as its trend
TREND: dict[bool, tuple[str, float, str]] = {
    True: ("ops_per_s", 1.0, "ops/s"),
    False: ("aggregate", MIB, "MiB/s aggregate"),
}


def _trend(run: RunDir, phase: str, summary: Any, history: Optional[Path]) -> str:
    """The history of the same benchmark (config hash; and the labels ``fab check`` judged
    it with) up to this run, change points marked."""
    if history is None or not summary.config_hash:
        return ""
    if not history.exists():
        return f"<p>history: none yet ({escape(str(history))})</p>"
    field, scale, unit = TREND[isinstance(summary, MetaSummary)]
    labels = (run.read_doc("check.json") or {}).get("labels") or {}
    run_id = run.run_id
    try:
        with History(history) as db:
            entries = db.entries(phase, labels, config_hash=summary.config_hash)
    except HistoryError as exc:
        return f"<p>history: {escape(str(exc))}</p>"
    ids = [e.run_id for e in entries]
    if run_id in ids:
        entries = entries[: ids.index(run_id) + 1]
    entries = [e for e in entries if getattr(e, field) is not None]
    if len(entries) < 2:
        return f"<p>history: {len(entries)} run(s) of config {escape(summary.config_hash)}</p>"
    values = [getattr(e, field) / scale for e in entries]
    good = [i for i, e in enumerate(entries) if e.valid]  # as fab check: invalid runs left out
    found = change_points([values[i] for i in good]) if len(good) >= 2 else []
    points = [replace(p, index=good[p.index]) for p in found]  # back to the runs drawn
    svg = plots.trend(
        phase, [e.run_id for e in entries], values, [e.valid for e in entries], points, unit,
        when=[e.created for e in entries],
    )  # fmt: skip
    among = "".join(f", {k}={v}" for k, v in sorted(labels.items()))
    caption = (
        f"{phase}: {len(entries)} runs of config {summary.config_hash}{among};"
        f" {len(points)} change point(s); hollow: invalid runs (not judged)"
    )
    return figure(svg, caption)


def sweep_page(doc: dict) -> str:
    """A sweep's page: aggregate throughput against the swept setting with the most values,
    a line per phase and value of the other settings; then every point and its run."""
    points = doc.get("points", [])
    axes = sorted({k for p in points for k in p.get("values", {})})
    distinct = {a: len({p["values"].get(a) for p in points}) for a in axes}
    axis = max(axes, key=lambda a: distinct[a]) if axes else "point"
    lines: dict[str, list[tuple]] = {}  # phase -> (point, MiB/s, (min, max))
    for p in points:
        values = p.get("values", {})
        rest = ",".join(f"{a}={values[a]}" for a in axes if a != axis and a in values)
        for phase in IO_PHASES:
            figures = (p.get("figures") or {}).get(phase)
            if not figures and not p.get("error"):
                continue
            value = figures.get("aggregate_throughput") if figures else None
            label = f"{phase} {rest}".strip()
            x = str(values.get(axis, p["point"]))
            spread = (figures or {}).get("spread") or {}
            ranged = (spread["low"] / MIB, spread["high"] / MIB) if "low" in spread else None
            versus = ((figures or {}).get("vs_baseline") or {}).get("value")
            ratio = None if versus is None else f"{versus:.2f}x"  # of the baseline's
            point = (x, None if value is None else value / MIB, ranged, ratio)
            lines.setdefault(label, []).append(point)
    rows = [(p["point"], _point_runs(p)) for p in points]
    counted = "median of the rounds; " if "seed" in doc else ""
    baseline = doc.get("baseline")
    body = [
        f"<h1>parbench sweep {escape(doc.get('sweep_id', '?'))}</h1>",
        f"<pre>{escape(sweeptable.sweep_table(doc, [a for a in axes if a in distinct]))}</pre>",
        figure(
            plots.sweep(axis, lines),
            f"aggregate throughput against {axis} ({counted}failed points left out)"
            + (f"; beside each point its ratio to {baseline}" if baseline else ""),
        ),
        "<h2>Points</h2>",
        _facts(rows),
    ]
    return page_html(f"parbench {doc.get('sweep_id', 'sweep')}", body)


def _point_runs(point: dict) -> str:
    """``run r1 (round 1): ok; ...``: each of a point's runs (one run a point in /1)."""
    runs = point.get("runs")
    if runs is None:
        return f"run {point.get('run_id') or '-'}: {point.get('error') or 'ok'}"
    return (
        "; ".join(
            f"run {r.get('run_id') or '-'} (round {r.get('round')}): {r.get('error') or 'ok'}"
            for r in runs
        )
        or "no run"
    )


def write_sweep(target: Path, doc: dict) -> Path:
    """Write a sweep's page next to its JSON (``results/sweeps/<id>.html``)."""
    write_atomically(target, sweep_page(doc))
    return target
