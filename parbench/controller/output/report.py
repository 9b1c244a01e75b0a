"""What a person reads in a terminal: plain-text tables of phases, verification and the
read plan (the HTML page, controller/output/htmlreport.py, shows them too). Sizes are MiB (2**20
bytes), rates MiB/s."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from parbench.controller.analysis import measures
from parbench.controller.analysis.metastats import MetaSummary
from parbench.controller.analysis.stats import Failure, PhaseSummary, Verdicts
from parbench.controller.output.block import NATIVE_NOTE
from parbench.controller.run.iterations import IterationPlan
from parbench.controller.run.natural import natural_key
from parbench.controller.run.pairing import Pairing
from parbench.worker.results import STATUSES, ClientResult, error_cause, outcome

from .groups import group, host_names, template
from .ranges import compact

MIB = 1024 * 1024
CHECKSUM_PREFIX = 12
#: causes of bad files verify_lines gives a line each
VERIFY_CAUSES = 10


def phase_table(summary: PhaseSummary) -> str:
    """Header line, one row per node, the per-client distribution and the errors."""
    s = summary
    first = s.first_done
    lines = [
        f"{s.phase}: {_mib(s.aggregate_throughput)} MiB/s aggregate"
        + (f" (last done; first done {_mib(first.throughput)})" if first else "")
        + f", {_mib(s.bytes)} MiB ({s.bytes} bytes, {s.files} files) in {s.wall_seconds:.3f} s,"
        f" start skew {s.start_skew * 1000:.1f} ms, ready skew {s.ready_skew * 1000:.1f} ms,"
        f" ok {s.ok}, errors {len(s.errors)}"
    ]
    lines += _verdict_lines(s)
    if not s.per_node:
        return "\n".join([*lines, "  (no records)"])
    rows = [
        (
            n.node,
            str(n.clients),
            str(n.ok),
            str(n.errors),
            str(n.files),
            _mib(n.bytes),
            "-" if n.first_start is None else f"{n.wall_seconds:.3f}",
            _mib(n.throughput),
        )
        for n in s.per_node
    ]
    lines += _table(("node", "clients", "ok", "errors", "files", "MiB", "s", "MiB/s"), rows)
    d = s.per_client
    if s.config.get("backend") == "native":  # a record is a node: no client's own figures
        lines.append(NATIVE_NOTE.strip())
    else:
        lines.append(
            f"per client MiB/s (n={d.n}): min {_mib(d.min)}  median {_mib(d.median)}"
            f"  p90 {_mib(d.p90)}  max {_mib(d.max)}"
        )
    lines += iteration_lines(s)
    lines += latency_lines(s.latency)
    lines += series_lines(s.series)
    return "\n".join(lines + _error_lines(s.errors))


def iteration_line(
    phase: str, iteration: int, warmup: bool, rounds: IterationPlan, aggregate: float
) -> str:
    """e.g. ``write iteration 3 of 5: 712.40 MiB/s aggregate`` as each one ends."""
    of = "" if rounds.until_stable is not None else f" of {rounds.most}"
    kind = " (warm-up, not counted)" if warmup else ""
    return f"{phase} iteration {iteration + 1}{of}{kind}: {_mib(aggregate)} MiB/s aggregate"


def iteration_lines(summary: PhaseSummary) -> list[str]:
    """The spread of a repeated phase's iterations (nothing for a phase run once)."""
    it = summary.iterations
    if it is None or len(it.measured) + len(it.warmup) <= 1:
        return []
    t = it.throughput
    lines = [
        f"iterations: {t.n} measured"
        + (f" after {len(it.warmup)} warm-up" if it.warmup else "")
        + f"; aggregate MiB/s mean {_mib(t.mean)} ± {_mib(t.stdev)} (cv {t.cv * 100:.1f} %),"
        f" 95 % CI {_mib(t.ci_low)}..{_mib(t.ci_high)},"
        f" min {_mib(t.min)} median {_mib(t.median)} max {_mib(t.max)}"
    ]
    rows = [
        (
            str(i.iteration + 1),
            "warm-up" if i.warmup else "",
            _mib(i.aggregate_throughput),
            f"{i.wall_seconds:.3f}",
            f"{i.start_skew * 1000:.1f}",
        )
        for i in (*it.warmup, *it.measured)
    ]
    lines += _table(("iteration", "", "MiB/s", "s", "skew ms"), rows, left=2)
    if it.verdict and it.verdict != "done":
        lines.append(f"iterations ended: {it.verdict}")
    return lines


#: latency columns: the percentile keys of worker.histogram's summary
LATENCY_COLUMNS = ("p50", "p90", "p99", "p99.9", "max")
#: operations in the order a transfer does them
OP_ORDER = ("create", "open", "ttfb", "write", "read", "close", "file")


def latency_lines(latency: dict[str, dict]) -> list[str]:
    """A table of each operation's count and percentiles in ms, 3 significant digits; a
    percentile its count cannot support (None) is ``-`` (none when not recorded)."""
    if not latency:
        return []
    ops = sorted(latency, key=lambda op: (OP_ORDER.index(op) if op in OP_ORDER else 99, op))
    rows = [
        (op, str(latency[op]["count"]), *(_ms3(latency[op].get(c)) for c in LATENCY_COLUMNS))
        for op in ops
    ]
    return ["latency (ms):", *_table(("op", "count", *LATENCY_COLUMNS), rows)]


def series_lines(series: dict | None, most: int = 12) -> list[str]:
    """Throughput over time, MiB/s per interval: all of them, or the first and last
    ``most``/2 with how many are left out between; a partial last interval over its own
    length, or left out when under half an interval (measures.rates), and said."""
    if not series or not series["bytes"]:
        return []
    found = measures.rates(series)
    rates = [_mib(rate) for _, _, rate in found]
    if len(rates) > most:
        half = most // 2
        rates = [*rates[:half], f"... ({len(rates) - most} more) ...", *rates[-half:]]
    last = series.get("last")
    note = ""
    if last is not None:
        kept = len(found) == len(series["bytes"])
        note = f" (the last over its {last:.2g} s)" if kept else f" (a last {last:.2g} s left out)"
    return [f"MiB/s per {series['interval']:g} s: {' '.join(rates)}{note}"]


def _ms(microseconds: float | None) -> str:
    return "-" if microseconds is None else f"{microseconds / 1000:.3f}"


def _ms3(microseconds: float | None) -> str:
    """Milliseconds to 3 significant digits (whole ones from 1000 on); None: ``-``."""
    if microseconds is None:
        return "-"
    ms = microseconds / 1000
    return f"{ms:.0f}" if ms >= 1000 else f"{ms:#.3g}".rstrip(".")


def meta_table(summary: MetaSummary) -> str:
    """The metadata phase: ops/s per kind (all clients, then per node), latency, errors."""
    s = summary
    lines = [
        f"meta: {s.clients} clients, {s.files} files each; ok {s.ok}, errors {len(s.errors)},"
        f" start skew {s.start_skew * 1000:.1f} ms"
    ]
    lines += _verdict_lines(s)
    rows = [
        (
            kind,
            str(f.count),
            f"{f.seconds:.3f}",
            f"{f.rate:.1f}",
            *(_ms(s.latency[kind][c]) if kind in s.latency else "-" for c in ("p50", "p99")),
        )
        for kind, f in s.ops.items()
    ]
    lines += _table(("op", "count", "s", "ops/s", "p50 ms", "p99 ms"), rows)
    kinds = list(s.ops)
    lines.append("ops/s per node:")
    lines += _table(
        ("node", *kinds),
        [(nid, *(f"{by_kind[k].rate:.1f}" for k in kinds)) for nid, by_kind in s.per_node.items()],
    )
    return "\n".join(lines + _error_lines(s.errors))


def _verdict_lines(summary: Verdicts) -> list[str]:
    """INVALID and why; the config hash and labels."""
    lines = []
    if summary.invalid:
        lines.append(f"INVALID: {'; '.join(summary.invalid)}")
    if summary.config_hash:
        labels = " ".join(f"{k}={v}" for k, v in sorted(summary.labels.items()))
        lines.append(f"config {summary.config_hash}" + (f", labels {labels}" if labels else ""))
    return lines


def _error_lines(errors: Sequence[Failure]) -> list[str]:
    if not errors:
        return []
    return [
        f"errors ({len(errors)}):",
        *(
            f"  {e.node}/{e.client} {e.path}: {outcome(e.status, e.error, e.host, e.path)}"
            for e in errors
        ),
    ]


def table(summary: PhaseSummary | MetaSummary) -> str:
    """The table of a timed phase's summary, whichever kind."""
    return meta_table(summary) if isinstance(summary, MetaSummary) else phase_table(summary)


def history_table(entries: Sequence[Any]) -> str:
    """The trend: one row per recorded phase, oldest first."""
    if not entries:
        return "history: no runs recorded (yet) for this selection"
    rows = [
        (
            e.run_id,
            e.phase,
            e.config_hash,
            "-" if e.aggregate is None else _mib(e.aggregate),
            "-" if e.first_done is None else _mib(e.first_done),
            "-" if e.p99_us is None else _ms(e.p99_us),
            "-" if e.ops_per_s is None else f"{e.ops_per_s:.1f}",
            str(len(e.samples)),
            "ok" if e.valid else "INVALID",
            e.cluster or "-",
            " ".join(f"{k}={v}" for k, v in sorted(e.labels.items())),
        )
        for e in entries
    ]
    header = (
        "run", "phase", "config", "MiB/s", "first done", "p99 ms", "ops/s", "n", "", "cluster",
        "labels",
    )  # fmt: skip
    return "\n".join(_table(header, rows, left=3))


#: how compare shows each metric: its unit and its values
_METRIC_UNITS: dict[str, tuple[str, Any]] = {
    "aggregate": ("MiB/s", lambda v: _mib(v)),
    "first_done": ("MiB/s", lambda v: _mib(v)),
    "client_median": ("MiB/s", lambda v: _mib(v)),
    "p99_latency": ("ms", lambda v: _ms(v)),  # values in us
    "ops_per_s": ("ops/s", lambda v: f"{v:.1f}"),
}


def compare_table(first: str, second: str, changes: Sequence[Any]) -> str:
    """One row per phase and metric: before, after, change, p value, samples, verdict."""
    rows = []
    for c in changes:
        unit, show = _METRIC_UNITS[c.metric]
        rows.append(
            (
                c.phase,
                f"{c.metric} {unit}",
                show(c.before),
                show(c.after),
                f"{c.change * 100:+.1f} %",
                "-" if c.p_value is None else f"{c.p_value:.3f}",
                f"{c.samples[0]}/{c.samples[1]}",
                c.verdict + (" (short run)" if getattr(c, "short", False) else ""),
            )
        )
    title = (
        f"compare {first} -> {second} (Mann-Whitney U, two-sided: a change needs p < 0.05 and 5 %)"
    )
    return "\n".join(
        [title, *_table(("phase", "metric", "A", "B", "change", "p", "n", ""), rows, left=2)]
    )


def check_lines(verdict: Any) -> list[str]:
    """A regression per line (metric, size, confidence, the runs that mark it), or the
    one line that says there is none; then the notes."""
    lines = []
    for r in verdict.regressions:
        unit, show = _METRIC_UNITS[r.metric]
        lines.append(
            f"REGRESSION {r.phase} {r.metric}: {r.change * 100:+.1f} % ({show(r.before)} ->"
            f" {show(r.after)} {unit}) since run {r.since}, confidence"
            f" {(1 - r.p_value) * 100:.1f} % (p {r.p_value:.4f}; {r.runs_before} run(s) before,"
            f" {r.runs_after} at the new level)"
        )
    if not verdict.regressions:
        lines.append(f"check: no regression in {verdict.runs} run(s)")
    return lines + [f"check: {note}" for note in verdict.notes]


def verify_table(records: Iterable[ClientResult]) -> str:
    """Per phase: a count line, then every file that is not ok with found vs expected."""
    records = list(records)
    if not records:
        return "verify: no records"
    phases = dict.fromkeys(r.phase for r in records)
    return "\n".join(
        line
        for phase in phases
        for line in _verify_phase(phase, [r for r in records if r.phase == phase])
    )


def plan_lines(pairing: Pairing) -> list[str]:
    """The pairing's summary, then who reads whose file, one reader a line."""
    rows = [
        (f"{a.reader_node}/{a.reader_client}", "<-", f"{a.source_node}/{a.source_client}")
        for a in pairing.assignments
    ]
    return [*pairing.describe(), *_table(("reader", "", "source"), rows, left=3)]


# --- text helpers ------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / MIB:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Indented aligned columns: the first ``left`` align left, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = (
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )
        return ("  " + "  ".join(cells)).rstrip()

    return [line(header), *map(line, rows)]


#: statuses of a file verify did not read: no size or checksum of it to show
NOT_READ = ("missing", "replaced")


def _verify_counts(phase: str, records: list[ClientResult], bad: list[ClientResult]) -> str:
    """``verify-read: 1 of 3 files ok, 2 not ok (1 mismatch, 1 missing)``."""
    files = sum(r.files for r in records)
    if not bad:
        return f"{phase}: all {files} files ok"
    by_status = [(st, sum(r.status == st for r in bad)) for st in STATUSES if st != "ok"]
    detail = ", ".join(f"{n} {st}" for st, n in by_status if n)
    of = "files" if files == len(records) else f"clients' files ({files} files checked)"
    return (
        f"{phase}: {len(records) - len(bad)} of {len(records)} {of} ok,"
        f" {len(bad)} not ok ({detail})"
    )


def _found(r: ClientResult) -> tuple[str, str]:
    """Size and checksum found/expected of a file verify checked."""
    return (
        f"{_or_dash(None if r.status in NOT_READ else r.bytes)}/{_or_dash(r.expected_bytes)}",
        f"{_prefix(r.checksum)}/{_prefix(r.expected_checksum)}",
    )


def _verify_phase(phase: str, records: list[ClientResult]) -> list[str]:
    bad = sorted((r for r in records if not r.ok), key=lambda r: (r.node, r.client, r.path))
    if not bad:
        return [_verify_counts(phase, records, bad)]
    rows = [
        (r.node, str(r.client), r.local_path or r.path, r.status, *_found(r),
         error_cause(r.error, r.host, r.path))
        for r in bad
    ]  # fmt: skip
    header = ("node", "client", "path", "status", "size found/expected", "checksum found/expected")
    return [_verify_counts(phase, records, bad), *_table((*header, "error"), rows, left=7)]


def verify_lines(records: Iterable[ClientResult]) -> list[str]:
    """Per phase its count line, then the files not ok a line per status and cause, naming
    the nodes compactly with one file as the example (controller/output/groups.py): the
    console's default; :func:`verify_table` lists every file."""
    records = list(records)
    if not records:
        return ["verify: no records"]
    lines = []
    for phase in dict.fromkeys(r.phase for r in records):
        mine = [r for r in records if r.phase == phase]
        bad = sorted((r for r in mine if not r.ok), key=lambda r: (natural_key(r.node), r.client))
        lines.append(_verify_counts(phase, mine, bad))
        groups = group(bad, lambda r: r.node, _verify_key)
        for g in groups[:VERIFY_CAUSES]:
            r = g.example
            size, checksum = _found(r)
            found = "" if r.status in NOT_READ else f" (size {size}, checksum {checksum})"
            cause = error_cause(r.error, r.host, r.path)
            lines.append(
                f"  {r.status}: {g.count} {'file' if g.count == 1 else 'files'} on {g.listed},"
                f" e.g. {r.node}/{r.client} {r.local_path or r.path}{found}"
                + (f": {cause}" if cause else "")
            )
        rest = groups[VERIFY_CAUSES:]
        if rest:
            more = sum(g.count for g in rest)
            nodes = compact(n for g in rest for n in g.nodes)
            lines.append(f"  and {more} more files not ok on {nodes}, for other causes")
    if any(not r.ok for r in records):
        lines.append("  every file: --verbose, or `fab report --verbose` (the run's records)")
    return lines


def _verify_key(r: ClientResult) -> tuple[str, str]:
    cause = error_cause(r.error, r.host, r.path)
    return r.status, template(cause, r.node, *host_names(r.host))


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _prefix(checksum: str | None) -> str:
    return checksum[:CHECKSUM_PREFIX] if checksum else "-"
