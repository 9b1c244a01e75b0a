"""THE grammar of sizes and durations, for the inventory, the flags, the worker's command
line and ``get_data.sh`` (which calls :func:`print_bytes`).

Sizes: a number of bytes, whole or decimal (``512``, ``1.5``), then a unit, a space
between allowed:

- ``B`` or none: bytes;
- ``K M G T P`` alone, and ``KiB MiB GiB TiB PiB`` (IEC): powers of 1024, as dd, fio
  and elbencho read ``4K`` or ``4M``;
- ``kB KB MB GB TB PB`` (SI): powers of 1000, as dd reads them.

The prefix letter may be written in either case (``4k`` = ``4K``, ``4kB`` = ``4KB``,
``1gib`` is not: see below), the ``i`` too; the ``B`` must be a capital: a lowercase
``b`` is a bit in SI and IEC, and ``mb`` meant 10^6 bytes in the inventory but 2^20 in
get_data.sh, so ``kb``, ``mb``, ``Mib``... are refused with what to write instead. No
sign, no exponent; the value must come to whole bytes (``1.5KiB`` = 1536 is fine,
``1.5`` is not) and stay below 2^63.

Durations: seconds as a number (``90``, ``0.5``), or one or more ``<number><unit>`` in
the order ``d h m s ms`` each at most once (``90s``, ``1m30s``, ``2h``, ``1d``, ``1h 30m``,
``250ms``): days, hours, minutes, seconds, milliseconds; lowercase. Not negative.

Stdlib only, Python 3.9+: the worker uses it on the nodes.
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from typing import Optional, Sequence

#: what a size may be written as, for messages
SIZE_FORMAT = (
    "a size like 4096, 4K, 64KiB, 1.5MiB or 2MB (K, M, G, T, P and KiB, MiB, ...: powers of"
    " 1024; kB, MB, GB, ...: powers of 1000)"
)
#: what a duration may be written as, for messages
DURATION_FORMAT = "seconds, or a time like 90s, 1m30s, 2h, 1d, 250ms"
#: the same, short, after a range
DURATION_LIKE = "like 90, 1m30s, 2h"
#: the largest size (a signed 64-bit count of bytes)
MAX_BYTES = 2**63 - 1
_PREFIXES = "kmgtp"
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_SIZE = re.compile(r"\s*" + _NUMBER + r"\s*([A-Za-z]*)\s*", re.ASCII)  # no "²", no "٣"
_SHAPE = re.compile(r"\s*[-+]?[\d.]+\s*[A-Za-z]*\s*", re.ASCII)
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": Decimal("0.001")}
_DURATION = re.compile(
    r"\s*" + "".join(rf"(?:{_NUMBER}{unit}\s*)?" for unit in _DURATION_UNITS) + r"\s*",
    re.ASCII,
)
_LONGEST = 40  # characters of a number: a 5000-digit one is no size


class UnitError(ValueError):
    """A size or duration that does not follow the grammar; the message says why."""


def _factor(unit: str) -> Optional[int]:
    """Bytes per ``unit``; None when it is none of the grammar's."""
    if unit in ("", "B"):
        return 1
    prefix, rest = unit[:1].lower(), unit[1:]
    if prefix not in _PREFIXES:
        return None
    power = _PREFIXES.index(prefix) + 1
    if rest == "" or rest.lower() == "ib" and rest.endswith("B"):
        return 1024**power
    if rest == "B":
        return 1000**power
    return None


def looks_like_size(text: str) -> bool:
    """A number then letters (``1G``, ``64 MiB``, ``5mb``, ``-1K``): what is read as a
    size, right or wrong, where a file name could also be written (``data``)."""
    return bool(_SHAPE.fullmatch(text)) and any(c.isdigit() for c in text)


def parse_size(value: object) -> int:
    """The bytes a size writes: an int (not a bool), or a string in the grammar above."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UnitError(f"expected {SIZE_FORMAT}, got {value!r}")
    if isinstance(value, int):
        size = Decimal(value)
    else:
        match = _SIZE.fullmatch(value)
        if value.strip().startswith("-") and looks_like_size(value):
            raise UnitError(f"expected a size of 0 bytes or more, got {value!r}")
        if match is None:
            raise UnitError(f"expected {SIZE_FORMAT}, got {value!r}")
        if len(match.group(1)) > _LONGEST:
            raise UnitError(f"expected a size below 2^63 bytes (8 EiB), got {value!r}")
        unit = match.group(2)
        factor = _factor(unit)
        if factor is None:
            if unit[-1:] == "b" and unit[:1].lower() in _PREFIXES:
                number = match.group(1)
                raise UnitError(
                    f"{value!r} is ambiguous (a lowercase b is a bit; is {unit} 1000 or 1024"
                    f" based?): write {number}{unit[0].upper()}B for powers of 1000 or"
                    f" {number}{unit[0].upper()}iB for powers of 1024"
                )
            raise UnitError(f"expected {SIZE_FORMAT}, got {value!r}")
        size = Decimal(match.group(1)) * factor
    if size < 0:
        raise UnitError(f"expected a size of 0 bytes or more, got {value!r}")
    if size > MAX_BYTES:
        raise UnitError(f"expected a size below 2^63 bytes (8 EiB), got {value!r}")
    if size != size.to_integral_value():
        raise UnitError(f"expected a whole number of bytes, got {value!r}")
    return int(size)


def parse_duration(value: object) -> float:
    """The seconds a duration writes: a number (not a bool), or a string in the grammar
    above. Not negative; no upper limit here (each setting has its own)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UnitError(f"expected {DURATION_FORMAT}, got {value!r}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        bare = re.fullmatch(r"\s*" + _NUMBER + r"\s*", value, re.ASCII)
        parts = match.groups() if match else ()
        if bare is not None:
            seconds = Decimal(bare.group(1))
        elif match is None or all(p is None for p in parts):
            raise UnitError(f"expected {DURATION_FORMAT}, got {value!r}")
        else:
            if any(p is not None and len(p) > _LONGEST for p in parts):
                raise UnitError(f"expected {DURATION_FORMAT}, got {value!r}")
            seconds = sum(
                (Decimal(p) * f for p, f in zip(parts, _DURATION_UNITS.values()) if p),
                Decimal(0),
            )
        number: float = float(seconds)
    else:
        if isinstance(value, int) and abs(value) > 10**18:  # 400 digits fit no float
            raise UnitError(f"expected a duration of at most 10^18 s, got {value!r}")
        number = float(value)
    if not number >= 0 or number == float("inf"):  # also nan
        raise UnitError(f"expected a duration of 0 s or more, got {value!r}")
    return number


def print_bytes(argv: Sequence[str], prog: str = "size") -> int:
    """Each size's bytes, a line each (get_data.sh); 2 and one line naming ``prog`` on
    stderr for one that is no size."""
    try:
        sizes = [parse_size(text) for text in argv]
    except UnitError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    for size in sizes:
        print(size)
    return 0
