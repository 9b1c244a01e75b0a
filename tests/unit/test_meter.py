"""What a client's meter records: latency per operation, bytes per interval, off switches."""

from __future__ import annotations

import time
from pathlib import Path

from parbench.worker.meter import NO_METER, Meter
from parbench.worker.protocol import Measure, StorageConfig
from parbench.worker.storage import PosixStorage


def test_chunks_land_in_the_interval_they_ended_in() -> None:
    meter = Meter(Measure(interval=0.1))
    meter.begin()
    meter.moved("write", meter.clock(), 10)
    time.sleep(0.25)
    meter.moved("write", meter.clock(), 5)
    series = meter.series_record()
    assert series["interval"] == 0.1 and abs(series["start"] - time.time()) < 5
    assert series["bytes"][0] == 10 and sum(series["bytes"]) == 15 and len(series["bytes"]) >= 3
    assert meter.latency_record()["write"]["count"] == 2


def test_switched_off_records_nothing() -> None:
    meter = Meter(Measure(latency=False, interval=0))
    meter.begin()
    meter.moved("read", meter.clock(), 10)
    assert meter.latency_record() is None and meter.series_record() is None
    assert NO_METER.latency_record() is None and NO_METER.series_record() is None


def test_posix_storage_times_each_operation(tmp_path: Path) -> None:
    storage = PosixStorage(StorageConfig(backend="posix", root=str(tmp_path)))
    meter = Meter(Measure())
    meter.begin()
    storage.write_stream("/f", [b"a" * 100] * 3, meter=meter)
    assert b"".join(storage.read_stream("/f", 120, meter)) == b"a" * 300
    latency = meter.latency_record()
    assert {op: h["count"] for op, h in latency.items()} == {
        "create": 1,
        "write": 3,
        "close": 1,
        "open": 1,
        "read": 3,
        "ttfb": 1,
    }
    assert sum(meter.series_record()["bytes"]) == 600  # written and read
