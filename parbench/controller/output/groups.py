"""What many nodes said, grouped: the same cause on different nodes (a failure, a record
not ok, a bad file of verify, a line of clean) is one line naming the nodes compactly
(controller/output/ranges.py) with one example, whatever the number of nodes.

A cause's *template* is what stays when what differs from node to node is taken out: the
node's id and host, URLs, paths, long hex strings (checksums) and numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .ranges import compact

T = TypeVar("T")

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
_PATH = re.compile(r"(?<![\w.])(?:\.{0,2}/)[^\s:,;'\"()\[\]]+")
_HEX = re.compile(r"\b[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def template(text: str, *names: str) -> str:
    """``text`` with ``names`` (a node's id, its host), URLs, paths, hex strings and
    numbers replaced by placeholders: the same error on two nodes has one template."""
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = _unnamed(text, name)
    text = _URL.sub("<url>", text)
    text = _PATH.sub("<path>", text)
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("#", text)


@dataclass
class Group(Generic[T]):
    """The items of one cause: their nodes (distinct, first seen first), how many items,
    and the first item as the example."""

    example: T
    nodes: list[str] = field(default_factory=list)
    count: int = 0

    @property
    def listed(self) -> str:
        """``n[0-9] (10 nodes)``, or the one node's id."""
        if len(self.nodes) == 1:
            return self.nodes[0]
        return f"{compact(self.nodes)} ({len(self.nodes)} nodes)"


def group(
    items: Iterable[T], node: Callable[[T], str], key: Callable[[T], Hashable]
) -> list[Group[T]]:
    """``items`` grouped by ``key``, the groups with the most nodes first (then as first
    seen)."""
    groups: dict[Hashable, Group[T]] = {}
    for item in items:
        found = groups.setdefault(key(item), Group(item))
        found.count += 1
        if node(item) not in found.nodes:
            found.nodes.append(node(item))
    return sorted(groups.values(), key=lambda g: -len(g.nodes))


def host_names(host: str) -> tuple[str, str]:
    """``user@name:port`` and its ``name``: what a cause may say of the host."""
    return host, host.rpartition("@")[2].rpartition(":")[0] or host


_VARIES = re.compile(f"{_URL.pattern}|{_PATH.pattern}|{_HEX.pattern}")


def _with_total(text: str, total: float) -> str:
    """``text`` with its one number outside URLs, paths and hex strings made ``total``."""
    parts, last = [], 0
    for found in _VARIES.finditer(text):
        parts += [_NUMBER.sub(f"{total:g}", text[last : found.start()]), found.group()]
        last = found.end()
    return "".join([*parts, _NUMBER.sub(f"{total:g}", text[last:])])


def summary(step: str, said: Mapping[str, Sequence[str]], nodes: int) -> str:
    """What ``step`` said on each node (node -> its lines, each maybe beginning with
    ``step``) on one line: a part per template, its number summed over the nodes (when it
    has one), naming the nodes compactly when not all ``nodes`` said it:
    ``clean on 64 nodes: deleted /bench/<node>; absent /bench/<node> on n[60-63]; ...``."""
    items = [
        (node, line.removeprefix(f"{step} ").strip())
        for node, lines in said.items()
        for line in lines
        if line.strip()
    ]
    parts = []
    for g in group(items, lambda i: i[0], lambda i: template(i[1], i[0])):
        node, line = g.example
        mine = [i for i in items if template(i[1], i[0]) == template(line, node)]
        text = _unnamed(line, node)
        if template(line, node).count("#") == 1:  # a count: the nodes' total
            text = _with_total(text, sum(float(_number(i[1], i[0])) for i in mine))
        elif len({_unnamed(*reversed(i)) for i in mine}) > 1:
            text += f" (e.g. {node})"
        parts.append(text + ("" if len(g.nodes) == nodes else f" on {compact(g.nodes)}"))
    count = f"{nodes} node" + ("" if nodes == 1 else "s")
    return f"{step} on {count}: " + ("; ".join(parts) or "nothing said")


def _unnamed(line: str, node: str) -> str:
    """``line`` with its node's id as ``<node>``."""
    return re.sub(rf"(?<![\w.-]){re.escape(node)}(?![\w-])", "<node>", line)


def _number(line: str, node: str) -> str:
    """The one number of ``line`` outside its node's id, URLs, paths and hex strings."""
    return _NUMBER.findall(_VARIES.sub("", _unnamed(line, node)))[0]
