"""Summary statistics of one phase from the clients' records.

Times are put on the controller's clock (``start - clock_offset``). Timing, bytes and
throughput use the ``ok`` records only: a failed client may never have started, and its
zero times would distort the span. Aggregate throughput is the bytes of all ok records
over the phase's span (last end - first start), not the sum of the clients' rates.
``bytes`` None (a size fs-checksum could not read) counts as 0.

A phase run several times is summarised over its measured iterations (warm-up ones are
reported apart, in ``iterations``): the span is the sum of the iterations' spans (the
pauses between them do not count), skews are the largest of any iteration, and
``iterations.throughput`` gives the spread of the iterations' aggregates. Errors of
every iteration, warm-up included, are listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TypeVar

from parbench.worker.results import ClientResult

from . import adequacy, measures
from .samples import Samples


@dataclass(frozen=True)
class Distribution:
    """Order statistics of some values; with no values ``n`` is 0 and the rest 0.0."""

    n: int
    min: float
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        ordered = sorted(values)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        return cls(
            n=len(ordered),
            min=ordered[0],
            median=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            max=ordered[-1],
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolating linearly (numpy's default)."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Failure:
    """A record that is not ok; ``error`` as the record has it (``HOST: PATH: cause``)."""

    node: str
    client: int
    path: str
    status: str
    error: str | None
    host: str = ""
    iteration: int = 0


@dataclass(frozen=True)
class ClientSummary:
    """One record on the controller clock (times 0.0 when the record is not ok)."""

    node: str
    client: int
    status: str
    bytes: int
    start: float
    end: float
    throughput: float  # bytes/s
    iteration: int = 0
    files: int = 1  # whole files moved


@dataclass(frozen=True)
class Stonewall:
    """elbencho's "first done": what all clients had moved when the first finished
    (summed over measured iterations, like the aggregate)."""

    seconds: float  # first start to first end
    bytes: float
    throughput: float  # bytes/s


@dataclass(frozen=True)
class IterationSummary:
    """One iteration of a phase (controller clock)."""

    iteration: int
    warmup: bool
    ok: int
    errors: int
    bytes: int
    first_start: float | None
    wall_seconds: float
    aggregate_throughput: float
    start_skew: float
    files: int = 0
    first_done: Stonewall | None = None


@dataclass(frozen=True)
class Iterations:
    """Every iteration, and the spread of the measured ones' aggregate throughput
    (bytes/s); ``verdict`` is why the controller stopped repeating (None: not said)."""

    warmup: tuple[IterationSummary, ...]
    measured: tuple[IterationSummary, ...]
    throughput: Samples
    verdict: str | None = None


@dataclass(frozen=True)
class NodeSummary:
    """The records of one node; times None when it has no ok record."""

    node: str
    clients: int
    ok: int
    errors: int
    bytes: int
    first_start: float | None
    last_end: float | None
    throughput: float  # bytes of ok records / wall_seconds, 0 if no span
    wall_seconds: float = 0.0  # last end - first start (iterations: the sum of theirs)
    files: int = 0  # whole files the ok records moved
    latency: dict[str, dict] = field(default_factory=dict)  # op -> percentiles (us)
    series: dict | None = None  # bytes per interval, controller clock (measures.Series)


S = TypeVar("S", bound="Verdicts")


class Verdicts:
    """What a phase's summary is given after its records are summarised: why its
    iterations stopped, its config, the run's labels and its validity (the fields
    ``iterations``, ``config``, ``config_hash``, ``labels`` and ``invalid``)."""

    iterations: Iterations | None
    config_hash: str
    labels: dict[str, str]
    invalid: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.invalid

    def to_dict(self) -> dict:
        """Plain data for JSON (with ``valid``)."""
        return {**asdict(self), "valid": self.valid}  # type: ignore[call-overload]

    def judged(
        self: S, config: dict, config_hash: str, labels: dict[str, str], invalid: tuple[str, ...]
    ) -> S:
        """This summary with what defines it, the run's labels and its validity."""
        return replace(  # type: ignore[type-var]
            self, config=config, config_hash=config_hash, labels=labels, invalid=invalid
        )

    def decided(self: S, verdict: str | None) -> S:
        """This summary with why its iterations stopped."""
        if self.iterations is None:
            return self
        return replace(self, iterations=replace(self.iterations, verdict=verdict))  # type: ignore[type-var]

    def restored(self: S, saved: dict) -> S:
        """This summary (made again from the records) with what only the run that made it
        knew, from the ``saved`` summary."""
        verdict = (saved.get("iterations") or {}).get("verdict")
        judged = self.decided(verdict).judged(
            saved.get("config", {}),
            saved.get("config_hash", ""),
            saved.get("labels", {}),
            tuple(saved.get("invalid", ())),
        )
        warned = {"warnings": tuple(saved.get("warnings", ())), "short": bool(saved.get("short"))}
        return replace(judged, **warned)  # type: ignore[type-var]


@dataclass(frozen=True)
class PhaseSummary(Verdicts):
    """What a phase achieved; ``per_client`` is in bytes/s, skews in seconds.

    With no ok records the times are None and the rates and skews 0.0.
    """

    phase: str
    clients: int
    ok: int
    errors: tuple[Failure, ...]
    bytes: int
    first_start: float | None
    last_end: float | None
    wall_seconds: float
    aggregate_throughput: float
    per_client: Distribution
    per_node: tuple[NodeSummary, ...]
    start_skew: float
    ready_skew: float
    by_client: tuple[ClientSummary, ...]
    #: op -> count, mean, min, p50, p90, p99, p99.9, max in us, over every record; a
    #: percentile the count cannot support is None (controller/analysis/adequacy.py)
    latency: dict[str, dict] = field(default_factory=dict)
    #: op -> the merged histogram itself (worker/results.py's Histogram), to merge further
    histograms: dict[str, dict] = field(default_factory=dict)
    series: dict | None = None  # all clients' bytes per interval (measures.Series)
    iterations: Iterations | None = None
    #: what defines the benchmark (controller/analysis/validity.py) and its hash; the run's labels
    config: dict = field(default_factory=dict)
    config_hash: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    #: why the figures cannot be trusted; empty: valid
    invalid: tuple[str, ...] = ()
    files: int = 0  # whole files the ok records moved
    first_done: Stonewall | None = None  # stonewall; the aggregate above is "last done"
    #: one-line warnings about what the figures can carry (adequacy.py); short: too short
    warnings: tuple[str, ...] = ()
    short: bool = False


def summarise(records: Iterable[ClientResult], phase: str | None = None) -> PhaseSummary:
    """Summarise the records of one phase; ``phase`` names it when there are none.

    Nodes keep the order in which they first appear in ``records``. Records of more than
    one phase (or of another phase than ``phase``) raise ValueError.
    """
    everything = list(records)
    phase = _phase(everything, phase)
    records = [r for r in everything if not r.warmup]
    ok = [r for r in records if r.ok]
    span = _Span.of_iterations(ok)
    nodes = dict.fromkeys(r.node for r in everything)
    merged = measures.latency(records)
    rounds = _by_iteration(ok)
    return PhaseSummary(
        phase=phase,
        clients=clients_of(everything),
        ok=len(ok),
        errors=failures_of(everything),
        bytes=span.bytes,
        first_start=span.first_start,
        last_end=span.last_end,
        wall_seconds=span.seconds,
        aggregate_throughput=span.throughput,
        per_client=Distribution.of(r.throughput for r in ok),
        per_node=tuple(_node(nid, [r for r in records if r.node == nid]) for nid in nodes),
        start_skew=max((_spread(map(_start, group)) for group in rounds), default=0.0),
        ready_skew=max(
            (_spread(r.ready - r.clock_offset for r in group if r.ready > 0) for group in rounds),
            default=0.0,
        ),
        by_client=tuple(_client(r) for r in records),
        latency=adequacy.percentiles(merged),
        histograms={op: h.to_dict() for op, h in merged.items()},
        series=_series(records),
        iterations=_iterations(everything),
        files=sum(r.files for r in ok),
        first_done=_first_done_of([_stonewall(group) for group in rounds]),
    )


def _stonewall(ok: list[ClientResult]) -> Stonewall | None:
    """First done of one iteration's ok records."""
    if not ok:
        return None
    first = min(map(_start, ok))
    done = min(map(_end, ok))
    moved = sum(measures.bytes_until(r, done) for r in ok)
    seconds = max(done - first, 0.0)
    return Stonewall(seconds, moved, moved / seconds if seconds > 0 else 0.0)


def _first_done_of(walls: list[Stonewall | None]) -> Stonewall | None:
    """Several iterations' first-done figures as one, as the aggregate adds spans up."""
    found = [w for w in walls if w is not None]
    if not found:
        return None
    seconds = sum(w.seconds for w in found)
    moved = sum(w.bytes for w in found)
    return Stonewall(seconds, moved, moved / seconds if seconds > 0 else 0.0)


def aggregate_of(records: list[ClientResult]) -> float:
    """Aggregate throughput (bytes/s) of one iteration's records, warm-up or not."""
    return _Span.of([r for r in records if r.ok]).throughput


def clients_of(records: list[ClientResult]) -> int:
    """How many distinct clients the records are of (a native record: its threads)."""
    return sum({(r.node, r.client): r.threads or 1 for r in records}.values())


def failures_of(records: list[ClientResult]) -> tuple[Failure, ...]:
    """The records that are not ok, as failures."""
    return tuple(
        Failure(r.node, r.client, r.path, r.status, r.error, r.host, r.iteration)
        for r in records
        if not r.ok
    )


def _by_iteration(records: list[ClientResult]) -> list[list[ClientResult]]:
    """The records grouped by iteration, in iteration order."""
    groups: dict[int, list[ClientResult]] = {}
    for record in records:
        groups.setdefault(record.iteration, []).append(record)
    return [groups[i] for i in sorted(groups)]


def _iterations(records: list[ClientResult]) -> Iterations:
    summaries = [_iteration(group) for group in _by_iteration(records)]
    measured = tuple(s for s in summaries if not s.warmup)
    return Iterations(
        warmup=tuple(s for s in summaries if s.warmup),
        measured=measured,
        throughput=Samples.of([s.aggregate_throughput for s in measured]),
    )


def _iteration(records: list[ClientResult]) -> IterationSummary:
    ok = [r for r in records if r.ok]
    span = _Span.of(ok)
    return IterationSummary(
        iteration=records[0].iteration,
        warmup=any(r.warmup for r in records),
        ok=len(ok),
        errors=len(records) - len(ok),
        bytes=span.bytes,
        first_start=span.first_start,
        wall_seconds=span.seconds,
        aggregate_throughput=span.throughput,
        start_skew=_spread(map(_start, ok)),
        files=sum(r.files for r in ok),
        first_done=_stonewall(ok),
    )


def _series(records: list[ClientResult]) -> dict | None:
    found = measures.series(records)
    return None if found is None else found.to_dict()


def _phase(records: list[ClientResult], phase: str | None) -> str:
    phases = sorted({r.phase for r in records} | ({phase} if phase else set()))
    if len(phases) > 1:
        raise ValueError(f"records of several phases cannot be summarised together: {phases}")
    return phases[0] if phases else ""


def _start(record: ClientResult) -> float:
    return record.start - record.clock_offset


def _end(record: ClientResult) -> float:
    return record.end - record.clock_offset


def _spread(values: Iterable[float]) -> float:
    values = list(values)
    return max(values) - min(values) if values else 0.0


@dataclass(frozen=True)
class _Span:
    """Bytes and time span of some ok records, on the controller clock."""

    bytes: int
    first_start: float | None
    last_end: float | None
    seconds: float
    throughput: float

    @classmethod
    def of_iterations(cls, ok: list[ClientResult]) -> _Span:
        """The spans of each iteration's records added up (one iteration: :meth:`of`)."""
        spans = [cls.of(group) for group in _by_iteration(ok)]
        if len(spans) <= 1:
            return spans[0] if spans else cls.of([])
        total = sum(s.bytes for s in spans)
        seconds = sum(s.seconds for s in spans)
        return cls(
            total,
            min(s.first_start for s in spans if s.first_start is not None),
            max(s.last_end for s in spans if s.last_end is not None),
            seconds,
            total / seconds if seconds > 0 else 0.0,
        )

    @classmethod
    def of(cls, ok: list[ClientResult]) -> _Span:
        if not ok:
            return cls(0, None, None, 0.0, 0.0)
        total = sum(r.bytes or 0 for r in ok)
        first, last = min(map(_start, ok)), max(map(_end, ok))
        seconds = max(last - first, 0.0)
        return cls(total, first, last, seconds, total / seconds if seconds > 0 else 0.0)


def _node(nid: str, records: list[ClientResult]) -> NodeSummary:
    ok = [r for r in records if r.ok]
    span = _Span.of_iterations(ok)
    return NodeSummary(
        node=nid,
        clients=clients_of(records),
        ok=len(ok),
        errors=len(records) - len(ok),
        bytes=span.bytes,
        first_start=span.first_start,
        last_end=span.last_end,
        throughput=span.throughput,
        wall_seconds=span.seconds,
        files=sum(r.files for r in ok),
        latency=adequacy.percentiles(measures.latency(records)),
        series=_series(records),
    )


def _client(record: ClientResult) -> ClientSummary:
    if not record.ok:
        return ClientSummary(
            record.node, record.client, record.status, 0, 0.0, 0.0, 0.0, record.iteration, 0
        )
    return ClientSummary(
        node=record.node,
        client=record.client,
        status=record.status,
        bytes=record.bytes or 0,
        start=_start(record),
        end=_end(record),
        throughput=record.throughput,
        iteration=record.iteration,
        files=record.files,
    )
