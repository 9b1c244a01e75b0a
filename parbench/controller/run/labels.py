"""Run labels (``labels:`` in the inventory, ``--label KEY=VALUE``): names and one-line
values kept with a run, its history and its metrics, checked here."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, NoReturn

#: a label's name: what OpenMetrics accepts (they become metric labels)
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_LABEL_VALUE = 200
#: the labels parbench's own metrics carry (controller/output/exports.py): a run's label of the
#: same name would replace them; ``__`` names are Prometheus's own (``__name__``)
RESERVED_LABELS = ("run_id", "phase", "config_hash")


def reserved_label(name: str) -> bool:
    return name in RESERVED_LABELS or name.startswith("__")


def check_labels(raw: Any, refuse: Callable[[str, str, Any], NoReturn]) -> dict[str, str]:
    """``labels``: names like ``cluster`` or ``build_id`` to one-line strings of at most
    MAX_LABEL_VALUE characters (numbers are taken as their text); ``refuse(key, what,
    value)`` raises for a bad one."""
    if not isinstance(raw, dict):
        refuse("", "a mapping of label names to values", raw)
    labels: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not LABEL_NAME.fullmatch(key):
            refuse(str(key), f"a label name matching {LABEL_NAME.pattern}", key)
        if reserved_label(key):
            refuse(
                key,
                f"a label name other than {', '.join(RESERVED_LABELS)} or __... (reserved:"
                " parbench's metrics carry them)",
                key,
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            refuse(key, "a string", value)
        text = str(value)
        if len(text) > MAX_LABEL_VALUE or any(ord(c) < 32 for c in text):
            refuse(key, f"one line of at most {MAX_LABEL_VALUE} characters", value)
        labels[key] = text
    return labels


class LabelError(ValueError):
    """A ``--label`` that is not KEY=VALUE with a valid name and value."""


def parse_labels(given: Iterable[str]) -> dict[str, str]:
    """``--label KEY=VALUE`` options as labels; LabelError naming a bad one."""
    pairs = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep:
            raise LabelError(f"--label: expected KEY=VALUE, got {item!r}")
        pairs[key] = value

    def refuse(key: str, what: str, value: Any) -> NoReturn:
        raise LabelError(f"--label {key}: expected {what}, got {value!r}")

    return check_labels(pairs, refuse)
