"""Typed decoding: every field of a request (or a lock request, the probe's facts) checked
against its annotation, and the refusals that name the field. Part of the contract
(worker/protocol/). Stdlib only, Python 3.9+."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any, Optional, Tuple, Union, get_type_hints


class RequestError(ValueError):
    """A request that cannot be run; the message names the field."""


class _Message:
    """A dataclass sent as one JSON object."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RequestError(f"{what}: not JSON ({exc})") from None


# --- typed decoding: every field checked against its annotation ------------------------


def decode(kind: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as an instance of the annotation ``kind``; RequestError
    naming ``where`` when it does not fit. Unknown keys of a dataclass are refused."""
    if is_dataclass(kind):
        if not isinstance(value, dict):
            _refuse(where, "an object", value)
        hints = get_type_hints(kind)
        known = {f.name: f for f in fields(kind)}
        for key in value:
            if key not in known:
                raise RequestError(f"{where}.{key}: unknown field")
        given = {}
        for name, spec in known.items():
            if name in value:
                given[name] = decode(hints[name], value[name], f"{where}.{name}")
            elif spec.default is MISSING and spec.default_factory is MISSING:
                raise RequestError(f"{where}.{name}: missing")
        return kind(**given)
    origin = getattr(kind, "__origin__", None)
    args = getattr(kind, "__args__", ())
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], value, where)
    if origin is dict:
        if not isinstance(value, dict):
            _refuse(where, "an object", value)
        return {
            decode(args[0], key, f"{where}.{key}"): decode(args[1], item, f"{where}.{key}")
            for key, item in value.items()
        }
    if origin in (tuple, Tuple):
        if not isinstance(value, list):
            _refuse(where, "a list", value)
        return tuple(decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _refuse(where, "a number", value)
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _refuse(where, "an integer", value)
        return value
    if kind is str:
        if not isinstance(value, str):
            _refuse(where, "a string", value)
        return value
    if kind is bool:
        if not isinstance(value, bool):
            _refuse(where, "true or false", value)
        return value
    raise TypeError(f"{where}: no decoder for {kind!r}")  # a bug in this module


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(where: str, expected: str, value: Any) -> None:
    raise RequestError(f"{where}: expected {expected}, got {_show(value)}")


def _choice(where: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        _refuse(where, "one of " + ", ".join(choices), value)


def _pattern(where: str, value: str, pattern: re.Pattern) -> None:
    if not pattern.fullmatch(value):
        _refuse(where, f"a plain name matching {pattern.pattern}", value)


def _absolute(where: str, path: Optional[str], allow_root: bool = False) -> None:
    """An absolute, normalised POSIX path without control characters (and not / unless
    ``allow_root``)."""
    ok = (
        isinstance(path, str)
        and path.startswith("/")
        and posixpath.normpath(path) == path
        and (allow_root or path != "/")
        and not any(ord(c) < 32 for c in path)
    )
    if not ok:
        what = "an absolute, normalised path" + ("" if allow_root else " other than /")
        _refuse(where, what, path)
