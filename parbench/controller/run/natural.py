"""Natural order of node and client ids: ``n2`` before ``n10`` (digits compared as
numbers), for every table and figure, on the console and on the page."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: object) -> tuple[tuple[int, int, str], ...]:
    """A sort key of ``name`` (str() of it) in which runs of digits compare as numbers:
    ``sorted(["n10", "n2", "n1"], key=natural_key) == ["n1", "n2", "n10"]``."""
    return tuple(
        (1, int(part), part) if part.isdigit() else (0, 0, part)
        for part in _DIGITS.split(str(name))
        if part
    )


def naturally(names: object) -> list[str]:
    """The distinct ``names`` (an iterable of str), in natural order."""
    return sorted(set(names), key=natural_key)  # type: ignore[call-overload]
