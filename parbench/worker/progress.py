"""How far a node's clients have got, for the controller's live progress.

Each client adds the bytes it moves and the whole files it finishes to its own two slots
of a shared array (one writer per slot: no lock, no message on the data path); the worker
reads the array every second and, when the controller runs it, prints one line
(worker/protocol/lines.py's ``Progress``) that the controller takes off the output and draws.
Stdlib only.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple


class Tally:
    """Bytes and whole files per client, in shared memory (inherited by the clients)."""

    def __init__(self, context: Any, clients: int) -> None:
        self.slots = context.RawArray("q", 2 * max(clients, 1))

    def totals(self) -> Tuple[int, int]:
        """(bytes, files) of every client so far."""
        values = self.slots[:]
        return sum(values[0::2]), sum(values[1::2])


#: this client process's slots: (the shared array, index of its bytes slot)
_MINE: Optional[Tuple[Any, int]] = None


def adopt(slots: Any, client_index: int) -> None:
    """In a client process: count into ``slots`` at the place of client ``client_index``."""
    global _MINE
    _MINE = (slots, 2 * client_index)


def mine() -> Optional[Tuple[Any, int]]:
    return _MINE
