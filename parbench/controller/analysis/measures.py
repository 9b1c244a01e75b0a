"""The clients' measurements merged: latency histograms per operation, and their
bytes-moved series aligned on the controller's clock.

A client's series starts at its own start (node clock); the controller shifts it by the
node's measured clock offset and spreads each interval's bytes over the intervals of a
common grid it overlaps, in proportion to the overlap (the bytes of an interval are taken
as moved evenly within it). The grid starts at the earliest series and has the largest
interval among them (one run has one).

The last interval is partial when the clients ended within it: ``last`` says how much of
it they ran (the latest end), and its rate is its bytes over that length, not over a
whole interval (which would draw a fall to zero at every phase's end). A last interval
of less than half an interval is left out of the rates (its bytes stay in the series):
a few milliseconds are no rate; unless it is the only one (a phase that short is warned
about, controller/analysis/adequacy.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from parbench.worker.results import ClientResult, Histogram

from ..run.rundir import ResultsError


def latency(records: Iterable[ClientResult]) -> dict[str, Histogram]:
    """Operation -> the merged histogram of every record that has one, by name."""
    merged: dict[str, Histogram] = {}
    for record in records:
        for op, data in (record.latency or {}).items():
            try:
                found = Histogram.from_dict(data)
            except (ValueError, TypeError, KeyError) as exc:
                raise ResultsError(
                    f"{record.node}/{record.client} {record.phase} record: latency of {op}: {exc}"
                ) from None
            merged.setdefault(op, Histogram()).merge(found)
    return dict(sorted(merged.items()))


@dataclass(frozen=True)
class Series:
    """Bytes moved per interval from ``start`` (epoch seconds, controller clock)."""

    start: float
    interval: float
    bytes: tuple[float, ...]
    last: float | None = None  # seconds the last interval covers; None: all of it

    def to_dict(self) -> dict:
        partial = self.last is not None and self.last < self.interval - 1e-9
        return {
            "start": self.start,
            "interval": self.interval,
            "bytes": [round(b) for b in self.bytes],
            **({"last": round(self.last, 6)} if partial else {}),  # type: ignore[arg-type]
        }


def rates(series: dict) -> list[tuple[float, float, float]]:
    """(seconds from the series' start, seconds covered, bytes/s) of each interval of a
    series as :meth:`Series.to_dict` has it: a partial last one over its own length, or
    left out when shorter than half an interval and not the only one."""
    step = float(series["interval"])
    moved = series["bytes"]
    out = [(k * step, step, b / step) for k, b in enumerate(moved)]
    last = series.get("last")
    if out and last is not None and last < step:
        out.pop()
        if last >= step / 2 or len(moved) == 1:
            out.append(((len(moved) - 1) * step, last, moved[-1] / last))
    return out


def series(records: Iterable[ClientResult]) -> Series | None:
    """The records' series summed on one grid (controller clock); None when none has one."""
    having = [r for r in records if r.series and r.series.get("interval")]
    found = [
        (r.series["start"] - r.clock_offset, float(r.series["interval"]), r.series["bytes"])
        for r in having
    ]
    if not found:
        return None
    start = min(s for s, _, _ in found)
    interval = max(i for _, i, _ in found)
    width = max(math.ceil((s - start + i * len(b)) / interval - 1e-9) for s, i, b in found)
    grid = [0.0] * max(width, 0)
    for began, step, moved in found:
        for k, amount in enumerate(moved):
            if amount:
                _spread(grid, (began - start + k * step) / interval, step / interval, amount)
    ends = [r.end - r.clock_offset for r in having if r.end > 0]
    last = min(max(ends) - start - (len(grid) - 1) * interval, interval) if ends and grid else None
    return Series(start, interval, tuple(grid), None if last is None or last <= 0 else last)


def _spread(grid: list[float], at: float, length: float, amount: float) -> None:
    """Add ``amount`` to the grid cells overlapping [at, at + length), by overlap."""
    end = at + length
    cell = int(math.floor(at))
    while at < end - 1e-12 and cell < len(grid):
        upto = min(cell + 1.0, end)
        grid[cell] += amount * (upto - at) / length
        at, cell = upto, cell + 1
    if at < end - 1e-12 and grid:  # rounding at the very end: the last cell keeps the rest
        grid[-1] += amount * (end - at) / length


def bytes_until(record: ClientResult, when: float) -> float:
    """The bytes ``record``'s client had moved at ``when`` (controller clock): from its
    series (an interval's bytes taken as moved evenly within it), or without one as if
    it moved at an even rate from start to end."""
    start, end = record.start - record.clock_offset, record.end - record.clock_offset
    total = float(record.bytes or 0)
    if when >= end:
        return total
    if when <= start:
        return 0.0
    series = record.series
    if not series or not series.get("interval"):
        return total * (when - start) / (end - start)
    began, step = series["start"] - record.clock_offset, float(series["interval"])
    moved = 0.0
    for k, amount in enumerate(series["bytes"]):
        low = began + k * step
        if low + step <= when:
            moved += amount
        elif low < when:
            moved += amount * (when - low) / step
    return min(moved, total)
