"""``fab check``: is the latest run part of a regression?

For each measured phase of the run, the history of the same benchmark (same config hash,
and the labels asked for) gives one value per valid run; change points are found in that
series (controller/analysis/changepoint.py). A regression is the last change point, when the
level from it on (which holds the run checked) is worse than the level before by at least
``min_effect``. A history shorter than ``min_points`` runs is said, not failed. Invalid
runs are left out of the series: their figures cannot be trusted either way. Short runs
(controller/analysis/adequacy.py) stay in, and a note says how many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..run.rundir import RunDir
from .changepoint import MIN_SIZE, change_points
from .history import History, location

#: metric -> (Entry field, True when higher is better). The throughputs only: a p99 of a
#: few files per run moves by a fifth from night to night, so a 5 % effect on it would
#: cry wolf (``fab compare`` shows it)
METRICS = {
    "aggregate": ("aggregate", True),
    "ops_per_s": ("ops_per_s", True),
}
MIN_POINTS = 2 * MIN_SIZE
MIN_EFFECT = 0.05


@dataclass(frozen=True)
class Regression:
    phase: str
    metric: str
    change: float  # relative, signed
    before: float
    after: float
    p_value: float
    since: str  # the first run of the worse level
    runs_before: int
    runs_after: int


@dataclass(frozen=True)
class Verdict:
    regressions: tuple[Regression, ...]
    notes: tuple[str, ...]  # short histories, phases checked
    runs: int  # the most runs any phase's series had


def check(
    history: History,
    run_id: str,
    summary: dict,
    labels: Optional[dict[str, str]] = None,
    min_points: int = MIN_POINTS,
    min_effect: float = MIN_EFFECT,
) -> Verdict:
    """Check run ``run_id`` (its ``summary.json``) against the history."""
    found: list[Regression] = []
    notes: list[str] = []
    longest = 0
    for phase, figures in summary.items():
        if not isinstance(figures, dict) or not figures.get("config_hash"):
            continue
        entries = [
            e
            for e in history.entries(phase, labels, figures["config_hash"])
            if e.valid or e.run_id == run_id
        ]
        if run_id not in {e.run_id for e in entries}:
            continue
        entries = entries[: [e.run_id for e in entries].index(run_id) + 1]  # up to this run
        longest = max(longest, len(entries))
        short = sum(e.short for e in entries)
        if short:
            notes.append(
                f"{phase}: {short} of {len(entries)} run(s) in the series were short (below"
                " short_phase_seconds or a few series intervals): their figures are noisy"
            )
        if len(entries) < min_points:
            notes.append(
                f"{phase}: history too short to judge ({len(entries)} run(s) of config"
                f" {figures['config_hash']}; {min_points} needed)"
            )
            continue
        for metric, (field, higher_is_better) in METRICS.items():
            series = [getattr(e, field) for e in entries]
            if any(v is None for v in series):
                continue
            points = change_points(series)
            if not points:
                continue
            last = points[-1]
            worse = (last.change < 0) == higher_is_better
            if worse and abs(last.change) >= min_effect:
                found.append(
                    Regression(
                        phase,
                        metric,
                        last.change,
                        last.before,
                        last.after,
                        last.p_value,
                        entries[last.index].run_id,
                        last.index - (points[-2].index if len(points) > 1 else 0),
                        len(entries) - last.index,
                    )
                )
    return Verdict(tuple(found), tuple(notes), longest)


def regression_check(
    root: Path, run_id: Optional[str], labels: dict[str, str], min_effect: float
) -> tuple[RunDir, Verdict]:
    """``fab check``: (the run, its verdict) against the history (the run is recorded
    first, if it is not yet)."""
    run = RunDir.open(root, run_id or "latest")
    with History(location(root)) as history:
        history.record(run)
        verdict = check(
            history, run.run_id, run.read_doc("summary.json", {}), labels, min_effect=min_effect
        )
    return run, verdict
