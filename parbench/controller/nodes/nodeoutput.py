"""What a node writes, held and shown within bounds.

A node's output is read a line at a time, and no line is held longer than ``MAX_LINE``
characters: the rest of a longer one is dropped up to its newline, and the line ends with
``CUT_MARKER``. The longest legitimate line is a record (``@record ...``: a client's
latency histogram and series, tens of KB today, per-file identities later: allow 4 MiB),
so the limit is twice that. Of a phase's output the controller keeps every record line
(up to ``MAX_RECORDS`` characters in all; past that they are fetched from the node's
records file) and only the last ``TAIL_LINES`` / ``TAIL_CHARS`` of the rest, for error
tails and the node's log. Node text printed on the controller goes through ``printable``,
so that a node cannot send escape sequences to the user's terminal.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Callable

from parbench.worker.protocol import is_record as told_record

from ..run.say import printable

#: characters of one line of a node's output; a record line may be 4 MiB
MAX_LINE = 8 * 1024 * 1024
CUT_MARKER = " [parbench: line cut, longer than 8 MiB]"
#: of a phase's ordinary output (not records), what is kept for the log and error tails
TAIL_LINES = 1000
TAIL_CHARS = 256 * 1024
#: characters of record lines kept from one phase of one node
MAX_RECORDS = 256 * 1024 * 1024


def tail(text: str, lines: int = 3) -> str:
    """The last ``lines`` non-empty lines of a node's ``text``, joined with `` | ``,
    printable: the cause of a failure in one line."""
    return " | ".join(printable(line) for line in text.strip().splitlines()[-lines:])


class LineCutter:
    """Text fed in pieces comes out with no line longer than ``limit`` characters: a longer
    one is cut there, ``CUT_MARKER`` added, and the rest of it dropped up to its newline."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._length = 0  # characters of the current line passed on
        self._cut = False  # the current line was cut: drop up to its newline

    def feed(self, text: str) -> str:
        out: list[str] = []
        start = 0
        while start < len(text):
            newline = text.find("\n", start)
            end = len(text) if newline < 0 else newline
            if not self._cut:
                room = self.limit - self._length
                piece = text[start:end]
                if len(piece) > room:
                    out.append(piece[:room] + CUT_MARKER)
                    self._cut = True
                else:
                    out.append(piece)
                    self._length += len(piece)
            if newline < 0:
                break
            out.append("\n")
            self._length, self._cut = 0, False
            start = newline + 1
        return "".join(out)


class Kept:
    """What the controller keeps of a phase's output, fed whole lines: every record line
    (up to ``MAX_RECORDS`` characters) and the last lines of the rest."""

    def __init__(
        self,
        lines: int = TAIL_LINES,
        chars: int = TAIL_CHARS,
        records: int = MAX_RECORDS,
        is_record: Callable[[str], bool] = told_record,
    ) -> None:
        self._tail: deque[tuple[int, str]] = deque()  # (its number, the line)
        self._tail_chars = 0
        self._records: list[tuple[int, str]] = []
        self._record_chars = 0
        self._limits = (lines, chars, records)
        self._is_record = is_record
        self._count = 0
        self.dropped = 0  # lines not kept

    def add(self, line: str) -> None:
        lines, chars, records = self._limits
        self._count += 1
        if self._is_record(line):
            if self._record_chars + len(line) <= records:
                self._records.append((self._count, line))
                self._record_chars += len(line)
            else:
                self.dropped += 1
            return
        self._tail.append((self._count, line))
        self._tail_chars += len(line)
        while len(self._tail) > lines or (self._tail_chars > chars and len(self._tail) > 1):
            self._tail_chars -= len(self._tail.popleft()[1])
            self.dropped += 1

    def text(self) -> str:
        """The kept lines in the order they came, after a line saying how many were not
        kept."""
        note = f"[parbench: {self.dropped} line(s) not kept]\n" if self.dropped else ""
        return note + "".join(line for _, line in heapq.merge(self._tail, self._records))


class KeptStream:
    """A growing text (an SSH stream read in pieces) kept as ``Kept`` keeps lines, cut as
    ``LineCutter`` cuts them."""

    def __init__(self, kept: Kept | None = None) -> None:
        self.kept = kept or Kept()
        self._cutter = LineCutter()
        self._pending: list[str] = []  # the current line, in pieces (no rescanning)

    def feed(self, text: str) -> tuple[str, list[str]]:
        """Keep ``text``: what it is once cut (to pass on), and the lines it completed."""
        text = self._cutter.feed(text)
        lines = split_lines(self._pending, text)
        for line in lines:
            self.kept.add(line)
        return text, lines

    def text(self) -> str:
        return self.kept.text() + "".join(self._pending)


def split_lines(pending: list[str], text: str) -> list[str]:
    """The lines that ``text`` completes (newline kept), the start of the first held in
    ``pending`` (pieces of the current line), which is left holding the rest: each piece
    is looked at once, however long the line grows."""
    if "\n" not in text:
        if text:
            pending.append(text)
        return []
    first, *lines = text.split("\n")
    rest = lines.pop()
    done = ["".join(pending) + first + "\n"] + [line + "\n" for line in lines]
    pending[:] = [rest] if rest else []
    return done
