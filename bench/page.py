"""The run's page at scale, without the testbed: synthetic records of ``nodes`` x
``clients`` (write and read, with latency histograms and 1 s throughput series) through
the product's own summaries and page; its size and the time to draw it.

``python -m bench --only page_at_scale`` (goal for 100 x 16: at most 2 MB, 10 s)."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from parbench.worker.results import ClientResult, Histogram

MIB = 1024 * 1024
SECONDS = 30  # each client's transfer, in 1 s series intervals


def synthetic(nodes: int = 100, clients: int = 16, seed: int = 7) -> dict[str, list[ClientResult]]:
    """Phase -> records of every client of every node; a few slow nodes and clients, one
    failed client, latencies spread over two decades."""
    rng = random.Random(seed)
    out: dict[str, list[ClientResult]] = {}
    for phase, ops in (("write", ("create", "write", "close")), ("read", ("open", "read"))):
        records = []
        for n in range(nodes):
            slow = 0.5 if n % 37 == 5 else 1.0
            for c in range(clients):
                rate = rng.gauss(40, 4) * slow * (0.6 if (n * clients + c) % 97 == 3 else 1.0)
                start = 1000.0 + rng.uniform(0, 0.05)
                seconds = SECONDS * 40 / max(rate, 1.0)
                steps = int(seconds) + 1
                moved = [int(rate * MIB * min(1.0, seconds - k)) for k in range(steps)]
                latency = {}
                for op in ops:
                    h = Histogram()
                    for _ in range(40):
                        h.record(int(rng.lognormvariate(8 if op in ("write", "read") else 7, 0.6)))
                    latency[op] = h.to_dict()
                failed = phase == "write" and n == 42 and c == 7
                records.append(
                    ClientResult(
                        run_id="r", phase=phase, node=f"n{n}", client=c, host=f"h{n}",
                        backend="alluxio", path=f"/bench/n{n}/{c}",
                        status="error" if failed else "ok",
                        error="h42: /bench/n42/7: ConnectionError: refused" if failed else None,
                        bytes=0 if failed else sum(moved), start=start, end=start + seconds,
                        ready=999.0, latency=latency,
                        series={"start": start, "interval": 1.0, "bytes": moved},
                    )
                )  # fmt: skip
        out[phase] = records
    return out


def page_at_scale(nodes: int = 100, clients: int = 16) -> dict:
    """Draw the page of ``nodes`` x ``clients`` synthetic records: its size and time."""
    from parbench.controller.analysis.stats import summarise
    from parbench.controller.output import htmlreport
    from parbench.controller.run.rundir import RunDir

    records = synthetic(nodes, clients)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(Path(tmp), "20261126T000000Z-page")
        began = time.monotonic()
        summaries = {phase: summarise(found) for phase, found in records.items()}
        page = htmlreport.run_page(run, summaries, records, [], None)
        seconds = time.monotonic() - began
    size = len(page.encode())
    return {
        "setup": f"{nodes} nodes x {clients} clients, write and read, synthetic records",
        "page_bytes": size,
        "page_mb": round(size / 1e6, 2),
        "draw_s": round(seconds, 2),
        "goal": "at most 2 MB and 10 s",
        "met": size <= 2_000_000 and seconds <= 10,
    }
