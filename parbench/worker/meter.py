"""What one client measures while it moves data: a latency histogram per operation and
the bytes moved per interval (throughput over time).

Operations: ``create``/``open`` (the storage call that makes or opens the file), ``write``
/``read`` (one chunk: handing it to the connection, or receiving it), ``ttfb`` (a read's
time to first byte: from before the open to the first chunk), ``close``, and ``file``
(one whole file, first byte to stored or copied). Latencies are monotonic-clock
(``perf_counter``) microseconds; the series starts at :meth:`Meter.begin` on the node's
wall clock, so that the controller can align the series of different nodes.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional

from . import progress
from .protocol import Measure
from .results import Histogram


class Meter:
    """Latency histograms by operation and a bytes-per-interval series of one client, as
    ``measure`` asks (either may be off; :data:`NO_METER` records nothing)."""

    def __init__(self, measure: Measure) -> None:
        self.record_latency = measure.latency
        self.interval = measure.interval  # 0: no series
        self.latency: Dict[str, Histogram] = {}
        self.bytes: List[int] = []
        self.started = 0.0  # epoch seconds of the series' first interval
        self._base = 0.0  # perf_counter() then
        self._tally = progress.mine()  # this client's progress slots, when it has them

    def begin(self) -> None:
        """The series starts now (the client's common start)."""
        self._base = time.perf_counter()
        self.started = time.time()

    @staticmethod
    def clock() -> float:
        return time.perf_counter()

    def since(self, op: str, began: float) -> float:
        """Count the time from ``began`` (:meth:`clock`) to now as one ``op``; returns now."""
        now = time.perf_counter()
        if self.record_latency:
            histogram = self.latency.get(op)
            if histogram is None:
                histogram = self.latency[op] = Histogram()
            histogram.record(round((now - began) * 1e6))
        return now

    def moved(self, op: str, began: float, size: int) -> None:
        """One chunk of ``size`` bytes moved by ``op`` since ``began``: its latency, and
        its bytes in the interval in which it ended."""
        now = self.since(op, began)
        if self.interval:
            index = int((now - self._base) / self.interval) if now > self._base else 0
            series = self.bytes
            if index >= len(series):
                series.extend([0] * (index + 1 - len(series)))
            series[index] += size
        if self._tally is not None:
            slots, at = self._tally
            slots[at] += size

    def file_done(self, began: float) -> None:
        """A whole file moved since ``began``: its ``file`` latency, and one file more."""
        self.since("file", began)
        if self._tally is not None:
            slots, at = self._tally
            slots[at + 1] += 1

    def latency_record(self) -> Optional[Dict[str, dict]]:
        """The histograms as a record carries them; None when latency is off."""
        if not self.record_latency:
            return None
        return {op: h.to_dict() for op, h in sorted(self.latency.items())}

    def series_record(self) -> Optional[dict]:
        """The series as a record carries it; None when off or never begun."""
        if not (self.interval and self.started):
            return None
        return {"start": self.started, "interval": self.interval, "bytes": list(self.bytes)}


#: the meter of code that measures nothing
NO_METER = Meter(Measure(latency=False, interval=0))
