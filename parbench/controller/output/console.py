"""What the phase loop (controller/phases.py) tells a person as it goes: the lines it
prints, in one place, so that the loop itself prints nothing. Tables are formatted by
controller/output/report.py; a node's own lines are streamed by controller/nodes/remote.py.

The one controller module that prints (tests/unit/test_layers.py): the command layer
prints through :func:`out` and :func:`err`, and the layers below it through the sink
this module is installed as (controller/run/say.py, by fabfile.py).
"""

from __future__ import annotations

import io
import sys
from typing import Any, Mapping, Optional, Sequence, TextIO

from parbench.controller.analysis.metastats import MetaSummary
from parbench.controller.analysis.stats import PhaseSummary
from parbench.controller.run.iterations import IterationPlan
from parbench.controller.run.rundir import NodeFailure
from parbench.controller.run.say import printable

from . import block, groups, report

#: how much the console says: ``quiet`` the headline and failures, ``default`` a block per
#: phase, ``verbose`` every table and every node's lines (config ``bench.output``)
LEVELS = ("quiet", "default", "verbose")
_level = "default"
_chosen: Optional[str] = None  # a level a flag chose: kept for the rest of the chain


class OutputLevelError(ValueError):
    """An unknown output level; the message names the key."""


def _print(text: str, file: Optional[TextIO] = None, end: str = "\n", flush: bool = False) -> None:
    """Every line this module writes: its control characters shown (a record's cause can
    quote anything a node or a server said; a terminal must never act on it)."""
    print(printable(text), file=file or sys.stdout, end=end, flush=flush)


def set_level(level: Optional[str], flag: Optional[str] = None) -> None:
    """The level from here on: ``flag`` (``--verbose``/``--quiet``, which then holds for the
    tasks after it in the chain), else the one a flag chose before, else ``level`` (the
    config key bench.output, None: default)."""
    global _level, _chosen
    if flag is not None:
        _chosen = flag
    chosen = _chosen or level or "default"
    if chosen not in LEVELS:
        raise OutputLevelError(
            f"bench.output (FABRIC_BENCH_OUTPUT): expected one of {', '.join(LEVELS)},"
            f" got {chosen!r}"
        )
    _level = chosen


def verbose() -> bool:
    return _level == "verbose"


def quiet() -> bool:
    return _level == "quiet"


def out(text: str, end: str = "\n") -> None:
    """``text`` as a line on stdout (``end=""``: text that ends its own lines, a CSV)."""
    _print(text, end=end, flush=True)


def note(text: str) -> None:
    """``text`` on stdout but at the quiet level."""
    if not quiet():
        out(text)


def detail(text: str) -> None:
    """``text`` on stdout at the verbose level only (it is in the run folder anyway)."""
    if verbose():
        out(text)


def err(text: str) -> None:
    """``text`` as a line on stderr."""
    _print(text, file=sys.stderr, flush=True)


class Dropped(io.StringIO):
    """Where a node's live lines go below the verbose level: nowhere (one per stream)."""

    def write(self, text: str) -> int:
        return len(text)


def live(error: bool = False) -> TextIO:
    """Where a node's live lines go (controller/nodes/remote.py): stdout, or stderr; below
    the verbose level nowhere (they are in the node's log in the run folder)."""
    if not verbose():
        return Dropped()
    return sys.stderr if error else sys.stdout


def pushed(infos: Mapping[str, Any]) -> None:
    """The nodes a push probed (node -> the push's NodeInfo, controller/nodes/push.py):
    verbose, a line each (host, python, what was copied, clock offset); else one line."""
    if not infos or quiet():
        return
    if not verbose():
        out(block.push_line(infos))
        return
    for node, info in infos.items():
        copied = f"{info.uploaded} file(s) copied" if info.uploaded else "up to date"
        if info.provisioned:
            copied += ", runtime installed"
        _print(
            f"[{node}] {info.hostname} python {info.python}: {copied}; "
            f"clock offset {block.signed_ms(info.clock_offset)} ms "
            f"(±{info.clock_error * 1000:.1f})"
        )


def failed(table: str, failures: Sequence[NodeFailure] = (), errors: Sequence[Any] = ()) -> None:
    """The nodes that failed, on stderr: verbose, the table (phases.failure_table); else a
    line per node (with ``errors``, the records not ok: their nodes too)."""
    if verbose() or not (failures or errors):
        _print(table, file=sys.stderr)
    else:
        _print("\n".join(block.failure_lines(failures, errors)), file=sys.stderr)


def phase_end(
    summaries: Sequence[PhaseSummary | MetaSummary], failures: Sequence[NodeFailure], table: str
) -> None:
    """The phases' blocks (verbose: their tables), then a line per failed node (``table``:
    phases.failure_table, for the verbose level)."""
    for summary in summaries:
        if verbose():
            _print(report.table(summary))
            for warning in getattr(summary, "warnings", ()):
                _print(f"warning: {warning}")
        else:
            _print("\n".join(block.phase_block(summary, quiet())), flush=True)
    errors = [] if verbose() else [e for s in summaries for e in s.errors]
    if failures or errors:
        failed(table, failures, errors)


def phase_start(
    phases: Sequence[str],
    clients: int,
    nodes: int,
    margin: float,
    auto: bool,
    rounds: IterationPlan,
) -> None:
    """A timed phase's first line: who starts together, when, how often and how long."""
    if not verbose():
        return
    note = " (start_delay: auto)" if auto else ""
    _print(
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
    if verbose():
        _print(report.iteration_line(phase, number, warmup, rounds, aggregate))


def said(phases: Sequence[str], text: str, error: bool = False) -> None:
    """``write+read: text`` (a verdict; with ``error``, on stderr: a trouble)."""
    _print(f"{'+'.join(phases)}: {text}", file=sys.stderr if error else sys.stdout)


def interrupted() -> None:
    _print(
        "interrupted: stopping the clients on every node and saving what finished "
        "(Ctrl-C again quits at once)",
        file=sys.stderr,
        flush=True,
    )


def late(phase: str, nodes: Sequence[str], ready_timeout: float) -> None:
    """Nodes that started without waiting for the others."""
    _print(
        f"{phase}: node(s) {', '.join(nodes)} were not ready within "
        f"{ready_timeout:g} s (defaults.ready_timeout) and started "
        "without waiting for the others",
        file=sys.stderr,
    )


def pairing(lines: Sequence[str]) -> None:
    """The read's pairing (report.plan_lines): verbose, its table; else its summary on one
    line (the table is in the run folder's plan.json)."""
    if verbose():
        _print("\n".join(lines))
    elif not quiet():
        told = [line for line in lines if not line.startswith("  ")]
        _print("; ".join(told[:2]))  # what is read, and whether every file is


def verified(records: Sequence[Any]) -> None:
    """What verify found (client records of verify-write/-read): verbose, every file not ok
    (report.verify_table); else per phase a line per status and cause, nodes compactly."""
    if verbose():
        _print(report.verify_table(records))
    else:
        _print("\n".join(report.verify_lines(records)))


def cleaned(said: Mapping[str, Sequence[str]], nodes: int) -> None:
    """What clean did (node -> the lines its worker printed, of ``nodes``): verbose,
    ``[node] line`` each; else one line for all (groups.summary)."""
    if verbose():
        for node, lines in said.items():
            node_lines(node, lines)
    elif not quiet():
        _print(groups.summary("clean", said, nodes))


def node_lines(node: str, lines: Sequence[str]) -> None:
    """``[node] line`` for each line (e.g. what collecting found there)."""
    for line in lines:
        _print(f"[{node}] {line}")
