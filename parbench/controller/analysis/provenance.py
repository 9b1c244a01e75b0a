"""Who made a file that verify found where a run's file should be.

Verify reports the tag of each file that is not the run's (``ClientResult.found``). Every
run records the tags of the files it made (``ClientResult.made``), so the run that made
the file found is the one among the other runs under ``results/`` whose records of the
same node hold that tag at that path. Looked up only for what verify found, newest runs
first, reading the records of the nodes concerned only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from parbench.worker.protocol import RUN_ID, VERIFIED, nth_path
from parbench.worker.results import ClientResult

from ..run.rundir import ResultsError, RunDir

Place = tuple[str, str]  # (node, path)


@dataclass(frozen=True)
class Maker:
    """The run whose phase made a file."""

    run_id: str
    phase: str
    iteration: int
    when: float  # epoch seconds (the node's clock): the end of the client that made it

    def describe(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.when))
        return f"run {self.run_id} ({self.phase}, iteration {self.iteration + 1}, {stamp})"


def _made_paths(record: ClientResult) -> list[tuple[str, str]]:
    """(path, tag) of each file the record says its client made."""
    base = record.local_path if record.phase == "read" else record.path
    if base is None or not record.made:
        return []
    return [(nth_path(base, k), tag) for k, tag in enumerate(record.made) if tag]


def _other_runs(root: Path, run_id: str) -> list[str]:
    names = (p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    return sorted((n for n in names if RUN_ID.fullmatch(n) and n != run_id), reverse=True)


def makers(root: Path, run_id: str, phase: str, found: dict[Place, str]) -> dict[Place, Maker]:
    """The run (other than ``run_id``) that made each file ``found`` (place -> tag) for
    verify phase ``phase``; a place whose maker is not among the runs is left out."""
    made_by = VERIFIED[phase]
    nodes = sorted({node for node, _ in found})
    left = dict(found)
    out: dict[Place, Maker] = {}
    for other in _other_runs(root, run_id):
        if not left:
            break
        folder = RunDir(root, other)
        for node in nodes:
            try:
                records = folder.node_records(node, made_by)
            except ResultsError:  # a damaged run of the past says nothing about today's files
                continue
            for record in records:
                for path, tag in _made_paths(record):
                    if left.get((node, path)) == tag:
                        out[(node, path)] = Maker(other, made_by, record.iteration, record.end)
                        del left[(node, path)]
    return out


def found_in(records: list[ClientResult]) -> dict[str, dict[Place, str]]:
    """Verify phase -> place -> tag of each file its records found not to be the run's."""
    out: dict[str, dict[Place, str]] = {}
    for record in records:
        for path, tag in (record.found or {}).items():
            out.setdefault(record.phase, {})[(record.node, path)] = tag
    return out


def lines(root: Path, run_id: str, records: list[ClientResult], shown: int = 3) -> list[str]:
    """Per verify phase, the files that are not the run's grouped by the run that made
    them (or none found): a line per maker with a count and a few examples."""
    out = []
    for phase, found in found_in(records).items():
        known = makers(root, run_id, phase, found)
        groups: dict[Optional[tuple[str, str, int]], list[Place]] = {}
        last: dict[tuple[str, str, int], Maker] = {}  # of each group, the latest file's
        for place in sorted(found):
            maker = known.get(place)
            key = None if maker is None else (maker.run_id, maker.phase, maker.iteration)
            groups.setdefault(key, []).append(place)
            if key is not None and (key not in last or maker.when > last[key].when):
                last[key] = maker  # type: ignore[assignment]
        out.append(f"{phase}: {len(found)} file(s) found are not run {run_id}'s:")
        for key, places in sorted(groups.items(), key=lambda g: -len(g[1])):
            by = last[key].describe() if key else "no run under results/ (another tool or user)"
            examples = ", ".join(f"{n}:{p}" for n, p in places[:shown])
            more = f" and {len(places) - shown} more" if len(places) > shown else ""
            out.append(f"  {len(places)} made by {by}: {examples}{more}")
    return out
