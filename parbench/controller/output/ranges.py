"""Node ids listed compactly: ``n[03-07,12]`` for n03, n04, n05, n06, n07 and n12.

Ids are grouped by their prefix (what comes before their trailing digits), in natural
order (controller/run/natural.py); within a prefix, consecutive numbers written alike (the
same zero-padding) fold into a range. A prefix with one id is written plainly (``n3``), an
id without trailing digits as it is. :func:`expand` gives the ids back: node ids have no
``[``, ``]``, ``,`` or space (worker/protocol's NODE_ID), so the form is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from parbench.controller.run.natural import natural_key

_TAIL = re.compile(r"^(.*?)(\d+)$")
_ITEM = re.compile(r"([^\s,\[\]]*)\[([^\]]*)\]|([^\s,\[\]]+)")


def _width(token: str) -> int:
    """The zero-padded width a number is written in (0: not padded)."""
    return len(token) if len(token) > 1 and token.startswith("0") else 0


def _runs(tokens: list[str]) -> list[list[str]]:
    """``tokens`` (digits) as runs of consecutive numbers written alike."""
    runs: list[list[str]] = []
    for token in sorted(tokens, key=lambda t: (int(t), t)):
        value = int(token)
        for run in runs:
            if int(run[-1]) == value - 1 and str(value).zfill(_width(run[0])) == token:
                run.append(token)
                break
        else:
            runs.append([token])
    return sorted(runs, key=lambda r: (int(r[0]), r[0]))


def compact(ids: Iterable[str]) -> str:
    """The distinct ``ids`` compactly: ``n[03-07,12], rack[1-2]``; ``""`` for none."""
    plain: list[str] = []
    by_prefix: dict[str, list[str]] = {}
    for node in set(ids):
        tail = _TAIL.match(node)
        if tail is None:
            plain.append(node)
        else:
            by_prefix.setdefault(tail.group(1), []).append(tail.group(2))
    items: list[tuple[str, str]] = [(p, p) for p in plain]  # (sort key, text)
    for prefix, tokens in by_prefix.items():
        if len(tokens) == 1:
            items.append((prefix + tokens[0], prefix + tokens[0]))
            continue
        runs = _runs(tokens)
        parts = ",".join(r[0] if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
        items.append((prefix + runs[0][0], f"{prefix}[{parts}]"))
    return ", ".join(text for _, text in sorted(items, key=lambda i: natural_key(i[0])))


def expand(text: str) -> list[str]:
    """The ids a :func:`compact` form lists, in its order."""
    ids: list[str] = []
    for prefix, inner, plain in _ITEM.findall(text):
        if plain:
            ids.append(plain)
            continue
        for part in inner.split(","):
            first, _, last = part.partition("-")
            width = _width(first)
            end = int(last) if last else int(first)
            ids.extend(prefix + str(v).zfill(width) for v in range(int(first), end + 1))
    return ids
