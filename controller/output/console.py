"""What the phase loop (controller/phases.py) tells a person as it goes: the lines it
prints, in one place, so that the loop itself prints nothing. Tables are formatted by
controller/output/report.py; a node's own lines are streamed by controller/nodes/remote.py.

The one controller module that prints (tests/unit/test_layers.py): the command layer
prints through :func:`out` and :func:`err`, and the layers below it through the sink
this module is installed as (controller/run/say.py, by fabfile.py).
"""

from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO

from controller.run.iterations import IterationPlan

from . import report


def out(text: str) -> None:
    """``text`` as a line on stdout."""
    print(text, flush=True)


def err(text: str) -> None:
    """``text`` as a line on stderr."""
    print(text, file=sys.stderr, flush=True)


def live(error: bool = False) -> TextIO:
    """Where a node's live lines go (controller/nodes/remote.py): stdout, or stderr."""
    return sys.stderr if error else sys.stdout


def pushed(node: str, info: Any) -> None:
    """One pushed node: its host, python, what was copied, its clock offset (``info``: the
    push's NodeInfo, controller/nodes/push.py)."""
    note = f"{info.uploaded} file(s) copied" if info.uploaded else "up to date"
    if info.provisioned:
        note += ", runtime installed"
    print(
        f"[{node}] {info.hostname} python {info.python}: {note}; "
        f"clock offset {info.clock_offset * 1000:+.1f} ms "
        f"(±{info.clock_error * 1000:.1f})"
    )


def failed(table: str) -> None:
    """The table of the nodes that failed (phases.failure_table), on stderr."""
    print(table, file=sys.stderr)


def phase_start(
    phases: Sequence[str],
    clients: int,
    nodes: int,
    margin: float,
    auto: bool,
    rounds: IterationPlan,
) -> None:
    """A timed phase's first line: who starts together, when, how often and how long."""
    note = " (start_delay: auto)" if auto else ""
    print(
        f"{'+'.join(phases)}: {clients} clients on {nodes} "
        f"node(s) start together {margin * 1000:.0f} ms{note} after the last is ready"
        + rounds_note(rounds)
    )


def rounds_note(rounds: IterationPlan) -> str:
    """How often and how long, for the phase's first line; nothing for the seed's once."""
    notes = []
    if rounds.duration is not None:
        notes.append(f"each moves files one after another for {rounds.duration:g} s")
    if rounds.most > 1:
        warm = f"{rounds.warmup} warm-up iteration(s), then " if rounds.warmup else ""
        if rounds.until_stable is not None:
            how = (
                f"until the last {rounds.window} agree within {rounds.until_stable * 100:g} %"
                f" (at most {rounds.max_iterations})"
            )
        else:
            how = f"{rounds.iterations} measured iteration(s)"
        notes.append(warm + how)
    return "".join(f"; {note}" for note in notes)


def iteration(
    phase: str, number: int, warmup: bool, rounds: IterationPlan, aggregate: float
) -> None:
    print(report.iteration_line(phase, number, warmup, rounds, aggregate))


def said(phases: Sequence[str], text: str, error: bool = False) -> None:
    """``write+read: text`` (a verdict; with ``error``, on stderr: a trouble)."""
    print(f"{'+'.join(phases)}: {text}", file=sys.stderr if error else sys.stdout)


def summary(summary: Any) -> None:
    """A timed phase's table (a PhaseSummary or a MetaSummary)."""
    print(report.table(summary))


def interrupted() -> None:
    print(
        "interrupted: stopping the clients on every node and saving what finished "
        "(Ctrl-C again quits at once)",
        file=sys.stderr,
        flush=True,
    )


def late(phase: str, nodes: Sequence[str], ready_timeout: float) -> None:
    """Nodes that started without waiting for the others."""
    print(
        f"{phase}: node(s) {', '.join(nodes)} were not ready within "
        f"{ready_timeout:g} s (defaults.ready_timeout) and started "
        "without waiting for the others",
        file=sys.stderr,
    )


def node_lines(node: str, lines: Sequence[str]) -> None:
    """``[node] line`` for each line (e.g. what collecting found there)."""
    for line in lines:
        print(f"[{node}] {line}")
