"""How the layers below the command layer tell a person something, without printing:
controller/output/console.py is the one module that writes to the console, and the
layers under it may not import it (tests/unit/test_layers.py). So they speak through the
sink installed here: :func:`install` is called once by the command layer (fabfile.py)
with the console module, which has the three functions of :class:`Say`.

Until one is installed (a module of a lower layer used on its own, as in a unit test),
:class:`Plain` writes the same lines to the same streams.
"""

from __future__ import annotations

import re
import sys
from typing import Optional, Protocol, TextIO

#: control characters but tab and newline: C0, DEL and C1 (ESC starts a terminal's escapes)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its control characters shown (ESC as ``\\x1b``); tabs and newlines
    stay. Whatever reaches a person's terminal goes through this: what a node said, and
    the causes its records carry (a storage error can quote anything a server sent)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class Say(Protocol):
    """What a lower layer hands its lines to."""

    def out(self, text: str) -> None:
        """``text`` as a line on stdout."""

    def err(self, text: str) -> None:
        """``text`` as a line on stderr (a warning, a trouble)."""

    def live(self, error: bool = False) -> TextIO:
        """The stream a node's live lines are written to (controller/nodes/remote.py's
        PrefixedStream): stdout, or with ``error`` stderr."""


class Plain:
    """The process's own streams, looked up at each call (a test may swap them)."""

    def out(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def err(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def live(self, error: bool = False) -> TextIO:
        return sys.stderr if error else sys.stdout


_sink: Optional[Say] = None


def install(sink: Optional[Say]) -> None:
    """Where the lower layers' lines go from now on (None: back to :class:`Plain`)."""
    global _sink
    _sink = sink


def current() -> Say:
    return Plain() if _sink is None else _sink


def out(text: str) -> None:
    current().out(text)


def err(text: str) -> None:
    current().err(text)
