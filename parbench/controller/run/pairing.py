"""Who reads whose file in cross-node read mode: pure, deterministic functions.

Clients are numbered ``0..count-1`` on each node and file ``(node, cid)`` is the one
client ``cid`` of ``node`` wrote. Every reader gets exactly one source on another node.

With ``T`` clients in all and ``M`` on the largest node, readers and files are laid out
grouped by node, largest group first (ties in inventory order), and position ``p`` reads
position ``(p + M) mod T``. That is a bijection, and when ``M <= T/2`` it never pairs
within a group: for ``p, q`` in one group of size ``g <= M``, ``p + M - q`` lies in
``[M-g+1, M+g-1]``, which holds neither 0 nor ``T`` (as ``M+g-1 < 2M <= T``). With equal
counts it is the rotation "node i reads node i+1, same cid".

When one node holds more than half (``M > T - M``), its ``M`` readers can only read the
``T - M`` other files and the ``T - M`` other readers can read at most ``T - M`` of its
files, so at most ``2(T - M)`` distinct files can be read. That bound is met; the large
node's remaining files are reported unread and the others' files read more than once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

File = tuple[str, int]


class PairingError(ValueError):
    """The nodes cannot be paired (fewer than two nodes, bad client counts)."""


@dataclass(frozen=True)
class Assignment:
    """Client ``reader_client`` of ``reader_node`` reads the file of the source client."""

    reader_node: str
    reader_client: int
    source_node: str
    source_client: int


@dataclass(frozen=True)
class Pairing:
    """Assignments in reader order (nodes as given, then client), and what they miss.

    ``unread`` lists files nobody reads; ``read_twice`` lists ``(node, client, times)``
    for files read more than once. Both are empty whenever every file can be read once.
    """

    assignments: tuple[Assignment, ...]
    unread: tuple[File, ...] = ()
    read_twice: tuple[tuple[str, int, int], ...] = ()

    @property
    def complete(self) -> bool:
        """Every written file is read exactly once."""
        return not self.unread and not self.read_twice

    def for_node(self, nid: str) -> tuple[Assignment, ...]:
        """The assignments of the readers on ``nid``, by reader client."""
        mine = (a for a in self.assignments if a.reader_node == nid)
        return tuple(sorted(mine, key=lambda a: a.reader_client))

    def describe(self) -> list[str]:
        """A summary for people: what is read, and which files are missed or repeated."""
        nodes = len({a.reader_node for a in self.assignments})
        lines = [
            f"cross-node read: {len(self.assignments)} clients on {nodes} nodes,"
            " each reads one file written on another node"
        ]
        if self.complete:
            return [*lines, "every written file is read exactly once"]
        lines.append(
            "one node has more than half of all clients, so not every file can be read"
            " from another node"
        )
        if self.unread:
            names = ", ".join(f"{n}/{c}" for n, c in self.unread)
            lines.append(f"{_files(len(self.unread))} not read: {names}")
        if self.read_twice:
            names = ", ".join(f"{n}/{c} ({times}x)" for n, c, times in self.read_twice)
            lines.append(f"{_files(len(self.read_twice))} read more than once: {names}")
        return lines


def cross_node(clients: Mapping[str, int]) -> Pairing:
    """Pair every client with a file written on another node (see the module docstring)."""
    counts = _validated(clients)
    files = [(nid, cid) for nid, count in counts.items() for cid in range(count)]
    largest = max(counts.values())
    if 2 * largest <= len(files):
        sources = _rotation(counts, largest)
    else:
        sources = _dominated(counts, max(counts, key=counts.__getitem__))
    assignments = tuple(Assignment(*reader, *sources[reader]) for reader in files)
    times = Counter(sources.values())
    return Pairing(
        assignments=assignments,
        unread=tuple(f for f in files if times[f] == 0),
        read_twice=tuple((*f, times[f]) for f in files if times[f] > 1),
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _validated(clients: Mapping[str, int]) -> dict[str, int]:
    counts = dict(clients)
    if len(counts) < 2:
        got = ", ".join(counts) or "none"
        raise PairingError(
            f"cross-node read needs at least two nodes (got {len(counts)}: {got}); "
            "to read back on the writing node use --mode same --src PATH"
        )
    for nid, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise PairingError(f"node {nid!r}: expected a client count >= 1, got {count!r}")
    return counts


def _rotation(counts: dict[str, int], largest: int) -> dict[File, File]:
    """Position p reads position (p + largest) mod total, largest group first."""
    order = sorted(counts, key=lambda nid: -counts[nid])  # stable: ties keep their order
    layout = [(nid, cid) for nid in order for cid in range(counts[nid])]
    return {f: layout[(p + largest) % len(layout)] for p, f in enumerate(layout)}


def _dominated(counts: dict[str, int], big: str) -> dict[File, File]:
    """``big`` has more than half: its readers cycle over all other files, the others
    read distinct files of ``big`` (its lowest clients)."""
    others = [(nid, cid) for nid, count in counts.items() if nid != big for cid in range(count)]
    bigs = [(big, cid) for cid in range(counts[big])]
    sources = {reader: others[j % len(others)] for j, reader in enumerate(bigs)}
    sources.update(zip(others, bigs))
    return sources
