"""The run page's tables as HTML (the console shows the same facts as text, report.py):
the headline of every phase, the run's settings, per phase its nodes, slowest nodes and
clients, latency, iterations and errors; verification and node failures. Sizes MiB
(2**20 bytes), rates MiB/s, latencies ms. Nodes and clients in natural order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from parbench.worker.protocol import VERIFY_PHASES
from parbench.worker.results import ClientResult, error_cause, outcome

from ..analysis.metastats import MetaSummary
from ..analysis.stats import PhaseSummary
from ..run.checks import in_units
from ..run.natural import natural_key

MIB = 1024 * 1024
#: rows of a table shown open; a longer one is folded (<details>) under its first rows
OPEN_ROWS = 40
#: the slowest nodes and clients listed
SLOWEST = 10
#: operations in the order a transfer does them
OP_ORDER = ("create", "open", "ttfb", "write", "read", "close", "file")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1,
          caption: str = "") -> str:  # fmt: skip
    """An HTML table; the first ``left`` columns text, the others numbers (right-aligned).
    More than OPEN_ROWS rows: folded, saying how many."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if i < left else ' class=n'}>{escape(str(c))}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    html = f"<table class=data>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if len(rows) > OPEN_ROWS:
        return f"<details><summary>{len(rows)} rows</summary>{html}</details>"
    return html


def mib(value: float) -> str:
    return f"{value / MIB:.2f}"


def ms(microseconds: float | None) -> str:
    """Milliseconds to 3 significant digits; "-" for a percentile too few samples support."""
    if microseconds is None:
        return "-"
    value = microseconds / 1000
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def headline(summaries: dict[str, PhaseSummary | MetaSummary]) -> str:
    """One row per phase: the figures a person looks for first."""
    rows = []
    for phase, s in summaries.items():
        if isinstance(s, MetaSummary):
            rate = sum(f.rate for f in s.ops.values())
            rows.append((phase, f"{rate:.1f} ops/s", "-", "-", s.files, "-", "-", "-", "-",
                         f"{s.ok}/{len(s.errors)}", "no" if s.invalid else "yes"))  # fmt: skip
            continue
        first = s.first_done
        p50, p99 = _latency_of(s)
        rows.append(
            (
                phase,
                mib(s.aggregate_throughput),
                mib(first.throughput) if first else "-",
                mib(s.per_client.median) if s.per_client.n else "-",
                s.files,
                mib(s.bytes),
                f"{s.wall_seconds:.2f}",
                p50,
                p99,
                f"{s.ok}/{len(s.errors)}",
                "no" if s.invalid else "yes",
            )
        )
    header = ("phase", "MiB/s (last done)", "first done", "client median", "files", "MiB", "s",
              "p50 ms", "p99 ms", "ok/errors", "valid")  # fmt: skip
    return table(header, rows, caption="headline: aggregate throughput of all nodes")


def _latency_of(summary: PhaseSummary) -> tuple[str, str]:
    """p50 and p99 of the whole file if recorded, else of the phase's data operation."""
    for op in ("file", "write", "read"):
        found = summary.latency.get(op)
        if found:
            return ms(found["p50"]), ms(found["p99"])
    return "-", "-"


def settings(sealed: dict, cluster: dict, summaries: dict[str, Any]) -> str:
    """The run (when, where, what) and each phase's settings, a column per phase."""
    document = (sealed.get("inventory") or {}).get("document") or {}
    nodes = sorted((str(n.get("id", "?")) for n in document.get("nodes", []) or []),
                   key=natural_key)  # fmt: skip
    reference = sealed.get("reference") or {}
    versions = sealed.get("versions") or {}
    labels = sealed.get("labels") or {}
    shown = ", ".join(nodes[:12]) + (f", ... {nodes[-1]}" if len(nodes) > 12 else "")
    facts = [
        ("created", str(sealed.get("created", "?"))),
        ("controller", str((sealed.get("controller") or {}).get("hostname", "?"))),
        ("nodes", f"{len(nodes)}: {shown}"),
        ("reference", f"{reference.get('path', '?')}, {_reference_size(reference.get('bytes'))}"),
    ]
    if cluster.get("version"):
        facts.append(("storage (cluster)", str(cluster["version"])))
    if labels:
        facts.append(("labels", " ".join(f"{k}={v}" for k, v in sorted(labels.items()))))
    facts.append(("software", " ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v)))
    out = [
        "<table class=facts>"
        + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in facts)
        + "</table>"
    ]
    configs = {p: {k: v for k, v in s.config.items() if k != "phase"} for p, s in summaries.items()}
    keys = sorted({k for c in configs.values() for k in c})
    if keys:
        rows = [(k, *(_setting(c.get(k, "-"), k) for c in configs.values())) for k in keys]
        out.append(table(("setting", *configs), rows, left=len(configs) + 1,
                         caption="settings of each phase"))  # fmt: skip
    return "\n".join(out)


#: settings in bytes, shown in binary units
SIZES = ("bytes", "chunk_size", "size", "meta_size")


def _reference_size(size: Any) -> str:
    """``5 MiB (5,242,880 bytes)``: the exact count stays, the unit reads first."""
    return f"{_setting(size, 'bytes')} ({size:,} bytes)" if isinstance(size, int) else "?"


def _setting(value: Any, key: str = "") -> str:
    """A setting as a person writes it: sizes in binary units, yes/no, a mapping as
    ``key value`` pairs without the unset ones, a list of one repeated value once, none
    as '-'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in SIZES and isinstance(value, int):
        return re.sub(r"^(\d+)", r"\1 ", in_units(value))  # 5MiB -> 5 MiB
    if isinstance(value, (list, tuple)):
        distinct = list(dict.fromkeys(_setting(v, key) for v in value))
        if len(distinct) == 1 and len(value) > 1:
            return f"{distinct[0]} (each of {len(value)})"
        return ", ".join(distinct[:8]) + (" ..." if len(distinct) > 8 else "")
    if isinstance(value, dict):
        shown = (f"{k} {_setting(v, k)}{' s' if k == 'duration' else ''}"
                 for k, v in sorted(value.items()) if v is not None)  # fmt: skip
        return ", ".join(shown) or "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if value is None else str(value)


def nodes(summary: PhaseSummary) -> str:
    rows = [
        (n.node, n.clients, n.ok, n.errors, n.files, mib(n.bytes),
         "-" if n.first_start is None else f"{n.wall_seconds:.3f}", mib(n.throughput))
        for n in sorted(summary.per_node, key=lambda n: natural_key(n.node))
    ]  # fmt: skip
    return table(("node", "clients", "ok", "errors", "files", "MiB", "s", "MiB/s"), rows,
                 caption=f"{summary.phase}: nodes")  # fmt: skip


def slowest(summary: PhaseSummary, most: int = SLOWEST) -> str:
    """The slowest nodes and clients (ok ones by throughput; failed ones first)."""
    by_node = sorted(summary.per_node, key=lambda n: (n.errors == 0, n.throughput))[:most]
    node_rows = [(n.node, mib(n.throughput), n.errors) for n in by_node]
    clients = sorted(summary.by_client, key=lambda c: (c.status == "ok", c.throughput))[:most]
    median = summary.per_client.median if summary.per_client.n else 0.0
    client_rows = [
        (f"{c.node}/{c.client}" + (f".{c.iteration}" if c.iteration else ""), c.status,
         mib(c.throughput), f"{c.throughput / median * 100:.0f} %" if median else "-")
        for c in clients
    ]  # fmt: skip
    return "<div class=pair>" + table(
        ("node", "MiB/s", "errors"), node_rows, caption=f"slowest {len(node_rows)} nodes"
    ) + table(
        ("client", "status", "MiB/s", "of median"), client_rows, left=2,
        caption=f"slowest {len(client_rows)} clients",
    ) + "</div>"  # fmt: skip


def latency(summary: PhaseSummary | MetaSummary) -> str:
    found = summary.latency
    if not found:
        return ""
    ops = sorted(found, key=lambda op: (OP_ORDER.index(op) if op in OP_ORDER else 99, op))
    columns = ("p50", "p90", "p99", "p99.9", "max")
    rows = [(op, found[op]["count"], *(ms(found[op][c]) for c in columns)) for op in ops]
    return table(("op", "count", *(f"{c} ms" for c in columns)), rows,
                 caption=f"{summary.phase}: latency")  # fmt: skip


def iterations(summary: PhaseSummary) -> str:
    it = summary.iterations
    if it is None or len(it.measured) + len(it.warmup) <= 1:
        return ""
    rows = [
        (i.iteration + 1, "warm-up" if i.warmup else "", mib(i.aggregate_throughput),
         f"{i.wall_seconds:.3f}", f"{i.start_skew * 1000:.1f}")
        for i in (*it.warmup, *it.measured)
    ]  # fmt: skip
    t = it.throughput
    caption = (f"{summary.phase}: iterations; mean {mib(t.mean)} MiB/s, 95 % CI"
               f" {mib(t.ci_low)}..{mib(t.ci_high)}")  # fmt: skip
    return table(("iteration", "", "MiB/s", "s", "skew ms"), rows, left=2, caption=caption)


def meta(summary: MetaSummary) -> str:
    rows = [(kind, f.count, f"{f.seconds:.3f}", f"{f.rate:.1f}") for kind, f in summary.ops.items()]
    return table(("op", "count", "s", "ops/s"), rows, caption="meta: operations")


def errors(summary: PhaseSummary | MetaSummary) -> str:
    found = sorted(summary.errors, key=lambda e: (natural_key(e.node), e.client))
    rows = [(f"{e.node}/{e.client}", e.path, outcome(e.status, e.error, e.host, e.path))
            for e in found]  # fmt: skip
    return table(("client", "path", "error"), rows, left=3,
                 caption=f"{summary.phase}: errors ({len(rows)})") if rows else ""  # fmt: skip


def verification(records: Iterable[ClientResult]) -> str:
    """Per verify phase a line, then every file not ok: found against expected."""
    records = list(records)
    out = []
    for phase in [p for p in VERIFY_PHASES if any(r.phase == p for r in records)]:
        mine = [r for r in records if r.phase == phase]
        bad = sorted((r for r in mine if not r.ok), key=lambda r: (natural_key(r.node), r.client))
        files = sum(r.files for r in mine)
        if not bad:
            out.append(f"<p>{escape(phase)}: all {files} files ok</p>")
            continue
        out.append(f"<p>{escape(phase)}: {len(mine) - len(bad)} of {len(mine)} ok,"
                   f" {len(bad)} not ok</p>")  # fmt: skip
        rows = [(r.node, r.client, r.local_path or r.path, r.status,
                 f"{r.bytes}/{r.expected_bytes if r.expected_bytes is not None else '-'}",
                 error_cause(r.error, r.host, r.path)) for r in bad]  # fmt: skip
        out.append(table(("node", "client", "path", "status", "size found/expected", "error"),
                         rows, left=6))  # fmt: skip
    return "\n".join(out)


def failed_nodes(failed: dict[str, list[dict]]) -> str:
    rows = [
        (phase, f.get("node", "?"), f.get("host", "?"), f.get("step", "?"), f.get("cause", "?"))
        for phase, found in failed.items()
        for f in sorted(found, key=lambda f: natural_key(f.get("node", "")))
    ]
    return table(("phase", "node", "host", "step", "cause"), rows, left=5)
