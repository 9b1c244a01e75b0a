"""What makes a phase's figures comparable with another run's, and whether they can be
trusted at all.

The **config** of a phase is what defines the benchmark (topology, sizes, types, backend,
repeats): two runs with the same config hash measured the same thing, whatever their
hosts, paths or labels. A phase is **invalid**, with its reasons, when its start skew
exceeds ``max_start_skew``, a node was lost, fewer clients than planned ran in an
iteration, or an iteration lasted less than ``min_phase_seconds``. An invalid phase's
figures are kept and shown, marked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ..run.inventory import Inventory
from ..run.plan import ReferenceFacts
from ..run.rounds import Rounds
from ..run.rundir import NodeFailure
from .stats import Verdicts


def phase_config(
    inventory: Inventory,
    reference: ReferenceFacts,
    phase: str,
    rounds: Rounds,
    read_mode: str | None = None,
) -> dict:
    """What defines ``phase`` of a run, as plain data."""
    s = inventory.settings
    config: dict = {
        "phase": phase,
        "backend": s.backend,
        "clients": [n.clients for n in inventory.nodes],
        "bytes": reference.bytes,
        "generated": reference.generated,
        "chunk_size": s.chunk_size,
        "latency": s.latency,
        "rounds": rounds.to_dict(),
    }
    if phase == "write":
        config["write_type"] = s.write_type
    if phase == "read":
        config["read_type"] = s.read_type
        config["read_mode"] = read_mode or "cross"
    if phase == "meta":
        config["meta"] = {"files": s.meta_files, "size": s.meta_size}
        for unrelated in ("bytes", "generated", "chunk_size"):
            del config[unrelated]
    return config


def config_hash(config: dict) -> str:
    """16 hex digits of the sha256 of the config's canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def judge(
    summary: Verdicts,
    planned: int,
    failures: Sequence[NodeFailure],
    max_start_skew: float,
    min_seconds: float,
) -> tuple[str, ...]:
    """Why ``summary``'s figures cannot be trusted (empty: they can)."""
    reasons: list[str] = []
    lost = sorted({f.node for f in failures})
    if lost:
        reasons.append(f"node(s) lost: {', '.join(lost)}")
    measured = summary.iterations.measured if summary.iterations else ()
    if not measured:
        reasons.append("no iteration was measured")
    for it in measured:
        label = f"iteration {it.iteration + 1}: " if len(measured) > 1 else ""
        if it.ok < planned:
            reasons.append(f"{label}{it.ok} of {planned} clients ran ok")
        if it.start_skew > max_start_skew:
            reasons.append(
                f"{label}start skew {it.start_skew * 1000:.1f} ms > max_start_skew"
                f" {max_start_skew * 1000:g} ms"
            )
        if it.wall_seconds < min_seconds:
            reasons.append(
                f"{label}lasted {it.wall_seconds:.3f} s < min_phase_seconds {min_seconds:g} s"
            )
    return tuple(reasons)
