"""Live progress of a phase on every node, and the nodes' other output around it.

Workers print a progress line every second (worker/progress.py); :class:`Board` takes
them and draws, on a terminal, one line per node and a total, rewritten in place; the
nodes' ordinary lines (``[n0] write n0/1 ok ...``) go above the block, never through it.
Above ``MOST_NODES`` nodes the block is two lines: the total, and the spread with the
nodes furthest behind. Without a terminal (cron, systemd, a pipe) it prints one plain
total line every ``every`` seconds instead, so a log shows how a long phase went without a
line per node.
Every write to the terminal goes through one lock: lines from many nodes' threads never
interleave.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, TextIO

from parbench.worker.protocol import Progress

from .console import Dropped

MIB = 1024 * 1024
#: the most node lines drawn on a terminal; beyond them, one line names the slowest
MOST_NODES = 16
BEHIND = 3
#: seconds the rate is taken over
RATE_WINDOW = 3.0


@dataclass
class NodeProgress:
    phase: str
    done: int
    total: int
    bytes: int
    files: int


class Board:
    def __init__(
        self,
        target: Optional[TextIO] = None,
        tty: Optional[bool] = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target or sys.stdout
        self.tty = self.target.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self.nodes: dict[str, NodeProgress] = {}
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the block on the terminal now
        self._began = clock()
        self._last_plain = self._began
        self._last_draw = 0.0
        self._window = [(self._began, 0)]  # (time, bytes moved): the recent rate

    def update(self, told: Progress) -> None:
        """A node's progress line (worker/protocol/lines.py's Progress)."""
        node = told.node
        now = NodeProgress(told.phase, told.done, told.total, told.bytes, told.files)
        with self._lock:
            self.nodes[node] = now
            if self.tty:
                self._redraw()
            elif self.clock() - self._last_plain >= self.every:
                self._plain()

    def lines(self, prefix: str, lines: list[str], target: Optional[TextIO] = None) -> None:
        """A node's ordinary output, above the block (none when the console drops it)."""
        out = target or self.target
        if isinstance(out, Dropped):
            return
        with self._lock:
            self._erase()
            self.target.flush()  # before another stream writes to the same terminal
            for line in lines:
                out.write(f"[{prefix}] {line}\n")
            out.flush()
            if self.tty:
                self._draw()

    def close(self) -> None:
        """The phase is over: the block goes (the phase's table follows)."""
        with self._lock:
            self._erase()
            self.target.flush()
            self.nodes.clear()

    def total(self) -> str:
        """``write: 4/6 clients done, 120.0 MiB, 7 files, 12.0 MiB/s, 3 s``."""
        nodes = self.nodes.values()
        phases = "+".join(dict.fromkeys(n.phase for n in nodes)) or "phase"
        moved = sum(n.bytes for n in nodes)
        now = self.clock()
        seconds = now - self._began
        return (
            f"{phases}: {sum(n.done for n in nodes)}/{sum(n.total for n in nodes)} clients done"
            f" on {len(self.nodes)} node(s), {moved / MIB:.1f} MiB,"
            f" {sum(n.files for n in nodes)} files, {self._rate(now, moved):.1f} MiB/s,"
            f" {seconds:.0f} s"
        )

    def _rate(self, now: float, moved: int) -> float:
        """MiB/s over the last RATE_WINDOW seconds (or since the sample before them); a
        count that went down (the next phase of the chain began) starts afresh."""
        if moved < self._window[-1][1]:
            self._window = [(now, moved)]
        self._window.append((now, moved))
        older = [i for i, (t, _) in enumerate(self._window) if t < now - RATE_WINDOW]
        if older:
            del self._window[: older[-1]]  # keep the newest sample older than the window
        (t0, b0) = self._window[0]
        return (moved - b0) / (now - t0) / MIB if now > t0 else 0.0

    # --- drawing, under the lock -----------------------------------------------------------

    def _node_lines(self) -> list[str]:
        shown = sorted(self.nodes.items())
        if len(shown) > MOST_NODES:  # one line for them all, naming the furthest behind
            behind = sorted(shown, key=lambda item: (item[1].done, item[1].bytes, item[0]))
            moved = sorted(p.bytes / MIB for _, p in shown)
            named = ", ".join(f"{nid} {p.done}/{p.total}" for nid, p in behind[:BEHIND])
            return [
                f"  {len(shown)} nodes, MiB each: min {moved[0]:.1f}, median"
                f" {moved[len(moved) // 2]:.1f}, max {moved[-1]:.1f}; furthest behind: {named}"
            ]
        return [
            f"  {nid:<12} {p.done:>4}/{p.total:<4} clients  {p.bytes / MIB:10.1f} MiB"
            f"  {p.files:6} files"
            for nid, p in shown
        ]

    def _draw(self) -> None:
        if not self.nodes:
            return
        # one terminal row per line, or the erase would leave rows behind
        columns, rows = shutil.get_terminal_size((100, 40))
        block = [self.total(), *self._node_lines()][: max(rows - 2, 1)]
        block = [line[: max(columns - 1, 10)] for line in block]
        self.target.write("\n".join(block) + "\n")
        self.target.flush()
        self._drawn = len(block)
        self._last_draw = self.clock()

    def _erase(self) -> None:
        if self._drawn:
            # up to the block's first line, then clear to the end of the screen
            self.target.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _redraw(self) -> None:
        if self.clock() - self._last_draw < 0.2 and self._drawn:
            return  # at most five frames a second
        self._erase()
        self._draw()

    def _plain(self) -> None:
        self._last_plain = self.clock()
        self.target.write(self.total() + "\n")
        self.target.flush()
