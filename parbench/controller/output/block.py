"""The console at any scale: one block per phase, one line for a push, whatever the number
of nodes and clients (controller/output/console.py prints them; its ``--verbose`` level
prints the tables of controller/output/report.py instead, row per node and client).

A block: what ran, the headline (aggregate, first done, files/s, file latency p50/p99),
the spread across nodes and clients with the slowest nodes and clients named, the
summary's warnings and validity, then a line per cause of failure naming its nodes
compactly (``n[03-07,12]``). Figures have three significant digits in a unit that suits
them (``62.7 MiB/s``, ``382 ms``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from parbench.controller.analysis.metastats import MetaSummary
from parbench.controller.analysis.stats import PhaseSummary
from parbench.controller.run.natural import natural_key
from parbench.controller.run.rundir import NodeFailure
from parbench.worker.results import error_cause, one_line, outcome

from .groups import Group, group, host_names, template
from .ranges import compact

#: nodes named as the slowest (and in a push line, as the ones that differ)
SLOWEST = 3
NAMED = 5
#: a clock offset above this is named in the push line (seconds)
NOTABLE_OFFSET = 0.1
#: characters of a failure's cause on its line
CAUSE = 400
#: causes of failures given a line each; the nodes of the rest are named on one more
CAUSES = 10
#: the cause of the phase failure of a node the push could not prepare (controller/phases.py)
NOT_PREPARED = "not prepared (see above)"
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def sig3(value: float) -> str:
    """``value`` to three significant digits, never in exponent form, never ``-0``."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100:
        text = f"{value:.0f}"
    elif size >= 10:
        text = f"{value:.1f}"
    elif size >= 1:
        text = f"{value:.2f}"
    elif size > 0:
        text = f"{value:.{2 - math.floor(math.log10(size))}f}"
    else:
        text = "0"
    return "0" if float(text) == 0 else text


def size(count: float, per: str = "") -> str:
    """Bytes in binary units: ``5.00 MiB``, ``62.7 MiB/s`` (with ``per="/s"``)."""
    value, unit = float(count), 0
    while abs(value) >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    number = f"{value:.0f}" if unit == 0 and value == int(value) else sig3(value)
    return f"{number} {_BYTE_UNITS[unit]}{per}"


def duration(microseconds: Optional[float]) -> str:
    """A latency: ``812 us``, ``382 ms``, ``1.20 s``; None (not supported by the count): -."""
    if microseconds is None:
        return "-"
    if abs(microseconds) < 1000:
        return f"{sig3(microseconds)} us"
    if abs(microseconds) < 1_000_000:
        return f"{sig3(microseconds / 1000)} ms"
    return f"{sig3(microseconds / 1_000_000)} s"


def signed_ms(seconds: float) -> str:
    """A clock offset in ms, one decimal, with its sign; 0.0 when it rounds to zero."""
    text = f"{seconds * 1000:+.1f}"
    return "0.0" if float(text) == 0 else text


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- a phase -------------------------------------------------------------------------------


def phase_block(summary: PhaseSummary | MetaSummary, quiet: bool = False) -> list[str]:
    """The block of a timed phase (``quiet``: its headline only); its failed nodes are
    :func:`failure_lines`."""
    if isinstance(summary, MetaSummary):
        return _meta_block(summary, quiet)
    s = summary
    headline = f"{s.phase}: " + _headline(s) if quiet else "  " + _headline(s)
    if quiet:
        return [headline + _invalid(s), *_notes(s)]
    lines = [_ran(s) + _invalid(s), headline]
    nodes = [n for n in s.per_node if n.ok]
    if len(s.per_node) > 1 and nodes:
        rates = sorted(nodes, key=lambda n: (n.throughput, n.node))
        named = rates[: SLOWEST if len(rates) > SLOWEST else 1]
        slowest = ", ".join(f"{n.node} {size(n.throughput, '/s')}" for n in named)
        lines.append(
            f"  per node: min {size(rates[0].throughput, '/s')},"
            f" median {size(statistics.median(n.throughput for n in rates), '/s')},"
            f" max {size(rates[-1].throughput, '/s')}; slowest: {slowest}"
        )
    d = s.per_client
    if d.n > 1 and s.config.get("backend") != "native":  # native: a record is a node
        lines.append(
            f"  per client: min {size(d.min, '/s')}, median {size(d.median, '/s')},"
            f" max {size(d.max, '/s')} (n={d.n}); slowest: {_slowest_clients(s)}"
        )
    return [*lines, *_notes(s)]


def _slowest_clients(s: PhaseSummary) -> str:
    """``n7/3 12.1 MiB/s, n2/0 12.4 MiB/s, n7/1.2 13.0 MiB/s`` (``.2``: its iteration):
    the slowest ok clients of the measured iterations."""
    ok = [c for c in s.by_client if c.status == "ok"]
    named = sorted(ok, key=lambda c: (c.throughput, natural_key(c.node), c.client, c.iteration))
    return ", ".join(
        f"{c.node}/{c.client}{f'.{c.iteration}' if c.iteration else ''} {size(c.throughput, '/s')}"
        for c in named[:SLOWEST]
    )


def _ran(s: PhaseSummary) -> str:
    """``write: 3 nodes, 6 clients, 5.00 MiB files; 6 files, 30.0 MiB in 0.479 s``, with
    ``through s3`` after the files when the path is not the REST proxy (the default)."""
    ran = f"{s.phase}: {_count(len(s.per_node), 'node')}, {_count(s.clients, 'client')}"
    each = s.config.get("bytes") or (s.bytes / s.files if s.files else 0)
    if each:
        ran += f", {size(each)} files"
    if s.config.get("backend", "alluxio") != "alluxio":
        ran += f" through {s.config['backend']}"
    rounds = s.config.get("rounds") or {}
    if rounds.get("duration") and not (s.phase == "write" and s.config.get("backend") == "native"):
        ran += f", for {sig3(rounds['duration'])} s each"
    it = s.iterations
    if it is not None and len(it.measured) + len(it.warmup) > 1:
        warm = f" after {len(it.warmup)} warm-up" if it.warmup else ""
        ran += f", {_count(len(it.measured), 'iteration')}{warm}"
    return ran + f"; {_count(s.files, 'file')}, {size(s.bytes)} in {sig3(s.wall_seconds)} s"


def _headline(s: PhaseSummary) -> str:
    line = f"{size(s.aggregate_throughput, '/s')} aggregate"
    if s.first_done is not None:
        line += f", first done {size(s.first_done.throughput, '/s')}"
    if s.wall_seconds > 0:
        line += f", {sig3(s.files / s.wall_seconds)} files/s"
    it = s.iterations
    if it is not None and it.throughput.n > 1:
        line += f" (iterations: cv {sig3(it.throughput.cv * 100)} %)"
    latency = s.latency.get("file")
    if latency:
        line += (
            f"; file latency p50 {duration(latency.get('p50'))}, p99 {duration(latency.get('p99'))}"
        )
    return line


#: the block's line of a phase run by StressClientIOBench (backend native, worker/native.py)
NATIVE_NOTE = (
    "  native: Alluxio's StressClientIOBench, one record per node (its threads = clients);"
    " n/a: native: per-file latency, per-client throughput, time series, verification"
)


def _notes(summary: Any) -> list[str]:
    """The summary's warnings, a line each; what a native phase cannot show."""
    native = [NATIVE_NOTE] if getattr(summary, "config", {}).get("backend") == "native" else []
    return [*native, *(f"  warning: {w}" for w in summary.warnings)]


def _invalid(summary: Any) -> str:
    """``; INVALID: why`` for the block's first line, or nothing."""
    return f"; INVALID: {'; '.join(summary.invalid)}" if summary.invalid else ""


def _meta_block(s: MetaSummary, quiet: bool) -> list[str]:
    rates = ", ".join(f"{kind} {sig3(f.rate)}/s" for kind, f in s.ops.items())
    if quiet:
        return [f"meta: {rates}{_invalid(s)}", *_notes(s)]
    lines = [
        f"meta: {_count(len(s.per_node), 'node')}, {_count(s.clients, 'client')},"
        f" {s.files} files each; ok {s.ok}{_invalid(s)}",
        f"  ops: {rates}",
    ]
    return [*lines, *_notes(s)]


def failure_lines(failures: Sequence[NodeFailure], errors: Sequence[Any] = ()) -> list[str]:
    """The nodes that failed or have records not ok (``errors``: the summaries' Failures),
    a line per cause (controller/output/groups.py): ``  n3 (user@host:22) write failed:
    cause``, or for many nodes ``  n[0-9] (10 nodes) write failed, e.g. n0 (user@host:22):
    cause``; at most :data:`CAUSES` lines of causes, then one naming the nodes of the rest."""
    lines: list[str] = []
    unprepared = [f.node for f in failures if f.cause == NOT_PREPARED]
    if unprepared:  # each named by the push already
        lines.append(
            f"  {_count(len(unprepared), 'node')} not prepared (see above): {compact(unprepared)}"
        )
    failed = [f for f in failures if f.cause != NOT_PREPARED]
    seen = {f.node for f in failures}
    bad = [e for e in errors if e.node not in seen]  # a failed node is said once
    causes: list[tuple[Group[Any], str]] = []
    for g in group(failed, lambda f: f.node, _failure_key):
        f = g.example
        where = f"{f.node} ({f.host})"
        said = f"{where} {f.step} failed" if len(g.nodes) == 1 else (
            f"{g.listed} {f.step} failed, e.g. {where}"
        )  # fmt: skip
        causes.append((g, f"  {said}: {one_line(f.cause, CAUSE)}"))
    for g in group(bad, lambda e: e.node, _error_key):
        e = g.example
        cause = outcome(e.status, e.error, e.host, e.path)
        host = f" ({e.host})" if e.host else ""
        at = f"{e.node}{host}: " if len(g.nodes) == 1 else f"{g.listed}: "
        example = f"{e.node}/{e.client}" + ("" if len(g.nodes) == 1 else host)
        said = f"{at}{_count(g.count, 'record')} not ok, e.g. {example}"
        causes.append((g, f"  {said}: {one_line(cause, CAUSE)}"))
    causes.sort(key=lambda c: -len(c[0].nodes))
    lines += [line for _, line in causes[:CAUSES]]
    rest = causes[CAUSES:]
    if rest:
        nodes = compact(n for g, _ in rest for n in g.nodes)
        lines.append(
            f"  and {len(rest)} more causes on {nodes} (each: --verbose, or the run folder)"
        )
    return lines


def _failure_key(f: NodeFailure) -> tuple[str, str]:
    return f.step, template(f.cause, f.node, *host_names(f.host))


def _error_key(e: Any) -> tuple[str, str]:
    return e.status, template(error_cause(e.error, e.host, e.path), e.node, *host_names(e.host))


# --- a push --------------------------------------------------------------------------------


def push_line(infos: Mapping[str, Any]) -> str:
    """``3 nodes pushed: 2 up to date, 1 copied 9 files; python 3.11.7 (n2: 3.9.18); clock
    offsets within ±0.1 ms`` (``infos``: node -> controller/nodes/push.py's NodeInfo)."""
    copied = {n: i.uploaded for n, i in infos.items() if i.uploaded}
    parts = []
    if len(copied) < len(infos):
        parts.append(f"{len(infos) - len(copied)} up to date")
    if copied:
        parts.append(f"{len(copied)} copied {_count(sum(copied.values()), 'file')}")
    installed = sum(1 for i in infos.values() if i.provisioned)
    if installed:
        parts.append(f"runtime installed on {installed}")
    line = f"{_count(len(infos), 'node')} pushed: {', '.join(parts)}"
    pythons = [i.python for i in infos.values()]
    usual = max(set(pythons), key=lambda v: (pythons.count(v), v))
    other = {n: i.python for n, i in infos.items() if i.python != usual}
    line += f"; python {usual}" + _named(other)
    calm = [abs(i.clock_offset) for i in infos.values() if abs(i.clock_offset) <= NOTABLE_OFFSET]
    notable = {
        n: f"{signed_ms(i.clock_offset)} ms"
        for n, i in infos.items()
        if abs(i.clock_offset) > NOTABLE_OFFSET
    }
    within = math.ceil(max(calm, default=0.0) * 10_000) / 10 or 0.1
    return line + f"; clock offsets within ±{within:.1f} ms" + _named(notable)


def _named(values: Mapping[str, str]) -> str:
    """`` (n2: 3.9.18, n7: 3.10.1, and 4 more)``; nothing for none."""
    if not values:
        return ""
    shown = [f"{n}: {v}" for n, v in list(values.items())[:NAMED]]
    more = f", and {len(values) - NAMED} more" if len(values) > NAMED else ""
    return f" ({', '.join(shown)}{more})"
