"""Summary of the metadata phase (``fab meta``): operations per second by kind.

Each kind's rate is its operations over all clients divided by its span: the first
client's start of that kind to the last client's end of it, on the controller's clock
(clients are not held together between kinds, as mdtest's ranks are by barriers, so a
kind's span may overlap the next kind's in other clients). Per node likewise; per client
its own count over its own span.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from parbench.worker.protocol import META_OPS
from parbench.worker.results import ClientResult

from . import adequacy, measures
from .samples import Samples
from .stats import (
    Distribution,
    Failure,
    Iterations,
    IterationSummary,
    Verdicts,
    clients_of,
    failures_of,
)


@dataclass(frozen=True)
class OpFigures:
    count: int
    seconds: float
    rate: float  # operations per second


def _figures(records: list[ClientResult], kind: str) -> OpFigures:
    spans = [
        (
            r.ops[kind]["count"],
            r.ops[kind]["start"] - r.clock_offset,
            r.ops[kind]["end"] - r.clock_offset,
        )
        for r in records
        if r.ops and kind in r.ops
    ]
    if not spans:
        return OpFigures(0, 0.0, 0.0)
    count = sum(c for c, _, _ in spans)
    seconds = max(e for _, _, e in spans) - min(s for _, s, _ in spans)
    return OpFigures(count, seconds, count / seconds if seconds > 0 else 0.0)


@dataclass(frozen=True)
class MetaSummary(Verdicts):
    phase: str
    clients: int
    ok: int
    errors: tuple[Failure, ...]
    files: int  # per client
    ops: dict[str, OpFigures]  # kind -> all clients
    per_node: dict[str, dict[str, OpFigures]]  # node -> kind -> that node's clients
    per_client: dict[str, Distribution]  # kind -> the clients' rates
    start_skew: float
    latency: dict[str, dict] = field(default_factory=dict)
    histograms: dict[str, dict] = field(default_factory=dict)
    iterations: Iterations | None = None  # one: for the validity checks every phase gets
    config: dict = field(default_factory=dict)
    config_hash: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    invalid: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # as PhaseSummary's (controller/analysis/adequacy.py)
    short: bool = False


def summarise_meta(records: Iterable[ClientResult]) -> MetaSummary:
    records = list(records)
    ok = [r for r in records if r.ok]
    nodes = dict.fromkeys(r.node for r in records)
    merged = measures.latency(records)
    starts = [r.start - r.clock_offset for r in ok]
    ends = [r.end - r.clock_offset for r in ok]
    skew = max(starts) - min(starts) if starts else 0.0
    wall = max(ends) - min(starts) if ok else 0.0
    only = IterationSummary(
        0, False, len(ok), len(records) - len(ok), 0, min(starts, default=None), wall, 0.0, skew
    )
    return MetaSummary(
        phase="meta",
        clients=clients_of(records),
        ok=len(ok),
        errors=failures_of(records),
        files=max((r.files for r in ok), default=0),
        ops={kind: _figures(records, kind) for kind in META_OPS},
        per_node={
            nid: {kind: _figures([r for r in records if r.node == nid], kind) for kind in META_OPS}
            for nid in nodes
        },
        per_client={
            kind: Distribution.of(_figures([r], kind).rate for r in ok) for kind in META_OPS
        },
        start_skew=skew,
        latency=adequacy.percentiles(merged),
        histograms={op: h.to_dict() for op, h in merged.items()},
        iterations=Iterations((), (only,), Samples.of([])),
    )
