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
from ..run.iterations import IterationPlan
from ..run.plan import ReferenceFacts
from ..run.rundir import NodeFailure
from ..run.settings import SETTINGS
from .stats import Verdicts

#: the settings of how often a phase runs: the config has the rounds it ran with (the
#: command line may override them), as ``rounds``
ROUND_SETTINGS = ("iterations", "warmup", "until_stable", "stable_window", "max_iterations",
                  "duration")  # fmt: skip
#: the settings whose place in the config is not ``{name: value}``: the key (in ``meta``)
_META_KEYS = {"meta_files": "files", "meta_size": "size"}


def phase_config(
    inventory: Inventory,
    reference: ReferenceFacts,
    phase: str,
    rounds: IterationPlan,
    read_mode: str | None = None,
) -> dict:
    """What defines ``phase`` of a run, as plain data: each setting declared part of the
    config (``Setting.config``, controller/run/settings.py) that counts for the phase
    (``Setting.phases``)."""
    s = inventory.settings
    config: dict = {"phase": phase}
    for setting in SETTINGS:
        name = setting.name
        if not setting.config or (setting.phases and phase not in setting.phases):
            continue
        if name == "clients":  # a node may have its own
            config["clients"] = [n.clients for n in inventory.nodes]
        elif name == "data":  # the reference file it stands for
            config.update(bytes=reference.bytes, generated=reference.generated)
        elif name in ROUND_SETTINGS:
            config["rounds"] = rounds.to_dict()
        elif name in _META_KEYS:
            config.setdefault("meta", {})[_META_KEYS[name]] = getattr(s, name)
        else:
            config[name] = getattr(s, name)
            if name == "read_type":
                config["read_mode"] = read_mode or "cross"
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
