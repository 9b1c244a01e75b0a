"""Lines for people: one per finished client and a summary of the phase."""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

from .results import ClientResult, outcome

MIB = 1024 * 1024


def format_size(size: Optional[int]) -> str:
    if size is None:
        return "? B"
    if size < 1024:
        return f"{size} B"
    if size < MIB:
        return f"{size / 1024:.1f} KiB"
    if size < 1024 * MIB:
        return f"{size / MIB:.1f} MiB"
    return f"{size / (1024 * MIB):.2f} GiB"


def format_rate(size: Optional[int], seconds: float) -> str:
    if not size or seconds <= 0:
        return "- MiB/s"
    return f"{size / MIB / seconds:.1f} MiB/s"


def progress_line(result: ClientResult) -> str:
    """e.g. ``n0/1 write /parbench/n0/1  5.0 MiB  0.12 s  41.2 MiB/s  ok``; one line, a
    failed client's ending with its error (without the host and path the line shows)."""
    # a check's speed is no throughput figure: verify lines say how the file was checked
    how = result.method if _is_check(result.phase) else format_rate(result.bytes, result.duration)
    return (
        f"{result.node}/{result.client} {result.phase} {result.path}  "
        f"{format_size(result.bytes)}  {result.duration:.2f} s  {how}  "
        f"{outcome(result.status, result.error, result.host, result.path)}"
    )


def _is_check(phase: str) -> bool:
    return phase.startswith("verify")


def summary_line(phase: str, node: str, results: Sequence[ClientResult], out: str) -> str:
    """Counts by status, bytes moved by ok clients, wall time and aggregate rate."""
    counts = Counter(result.status for result in results)
    ok = [result for result in results if result.ok]
    parts = [f"{counts['ok']}/{len(results)} ok"]
    parts += [f"{counts[status]} {status}" for status in sorted(counts) if status != "ok"]
    moved = sum(result.bytes or 0 for result in ok)
    timed = [result for result in ok if result.start > 0]
    wall = max(r.end for r in timed) - min(r.start for r in timed) if timed else 0.0
    if _is_check(phase):
        return f"{phase} {node}: {', '.join(parts)}; records: {out}"
    return (
        f"{phase} {node}: {', '.join(parts)}; {format_size(moved)} in {wall:.2f} s "
        f"(first start to last end), {format_rate(moved, wall)} aggregate; records: {out}"
    )
