"""The versioned record a client emits: one JSON line per client and phase.

This module is the contract between the worker (which writes the lines on a node) and
the controller (which fetches and summarises them). It is stdlib-only and Python 3.9+.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import traceback
from dataclasses import MISSING, asdict, dataclass, fields
from fractions import Fraction
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

#: an added optional field is no new version: readers ignore the keys they do not know and
#: give the fields a record lacks their default
SCHEMA = "parbench.client/1"

#: outcomes of one record; "ok" for IO that completed, the rest for verification
#: ("replaced": a file is there, but not the one the run made)
STATUSES = ("ok", "error", "mismatch", "missing", "replaced")

#: files of a verify record named in its ``found`` at most
FOUND_LIMIT = 100

#: characters of an error as lines for people show it, and of a record's ``detail``
ERROR_LIMIT = 400
DETAIL_LIMIT = 8000


@dataclass(frozen=True)
class ClientResult:
    """What one client did in one phase (or, for verify phases, one checked file).

    Times are epoch seconds on the node's clock (``time.time()``); ``clock_offset`` is
    the controller's estimate of (node clock - controller clock), filled in by the
    controller when it gathers results, so that times of different nodes compare.
    """

    run_id: str
    phase: str
    node: str
    client: int
    host: str
    backend: str
    path: str  # the storage path written, read or checked
    local_path: Optional[str] = None  # read: where the copy was saved; verify-read: copy checked
    status: str = "ok"
    error: Optional[str] = None  # one line: host, path, what failed and why
    detail: Optional[str] = None  # the error's whole exception chain (traceback), bounded
    bytes: int = 0
    start: float = 0.0  # first byte moved (after the common start)
    end: float = 0.0
    ready: float = 0.0  # when the client's connection was set up, before waiting to start
    checksum: Optional[str] = None  # verify: hex digest found (write/read hash nothing)
    expected_bytes: Optional[int] = None  # verify: size of the reference file
    expected_checksum: Optional[str] = None  # verify: digest of the reference file
    algorithm: str = "sha256"  # of both checksums ("md5": `alluxio fs checksum`, older runs)
    method: Optional[str] = None  # verify: "stream" (read back; "fs-checksum": older runs)
    replaced: bool = False  # write: an earlier file at this path was deleted first
    clock_offset: float = 0.0
    #: write/read: operation -> latency histogram (worker/results.py's Histogram), None when off
    latency: Optional[Dict[str, dict]] = None
    #: write/read: {"start": epoch s (node clock), "interval": s, "bytes": [per interval]}
    series: Optional[dict] = None
    files: int = 1  # whole files moved or checked (a phase with a duration moves several)
    #: meta: kind -> {"count": operations done, "start": epoch s, "end": epoch s} (node clock)
    ops: Optional[Dict[str, dict]] = None
    iteration: int = 0  # of a phase run several times
    cluster: Optional[str] = None  # write/read/meta: the storage's version, e.g. "alluxio 2.9.6"
    warmup: bool = False  # a warm-up iteration's: not in the statistics
    #: write/read: the tag (worker/storage.TAG) of each file it left, in sequence
    #: order (read: its copies), taken once the clients are done; "" for one not there
    made: Optional[List[str]] = None
    #: verify: path -> tag of a file there that is not the run's (at most FOUND_LIMIT)
    found: Optional[Dict[str, str]] = None
    #: native (worker/native.py): the threads of StressClientIOBench this one record of a
    #: node stands for (None: a record is one client)
    threads: Optional[int] = None
    schema: str = SCHEMA

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def throughput(self) -> float:
        """Bytes per second of this client, 0 when it moved nothing."""
        return (self.bytes or 0) / self.duration if self.duration > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ClientResult:
        """The record of a JSON object; ValueError naming the first field that is missing
        or not of its type (a damaged record never reaches the statistics)."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {_shown(data)}")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"unknown result schema {data.get('schema')!r}, expected {SCHEMA!r}")
        given = {k: v for k, v in data.items() if k in _FIELD_TYPES}
        missing = [name for name in _REQUIRED if name not in given]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        for name, value in given.items():
            what, fits = _FIELD_TYPES[name]
            if not fits(value):
                raise ValueError(f"field {name!r}: expected {what}, got {_shown(value)}")
        return cls(**given)


# --- the types of a record's fields, as JSON has them --------------------------------------


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _or_null(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _objects(check: Callable[[Any], bool] = lambda v: isinstance(v, dict)) -> Callable[[Any], bool]:
    """An object whose values each pass ``check``."""
    return lambda value: (
        isinstance(value, dict) and all(isinstance(k, str) and check(v) for k, v in value.items())
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _op(value: Any) -> bool:
    """meta: one kind's ``{"count", "start", "end"}``."""
    return (
        isinstance(value, dict)
        and _integer(value.get("count"))
        and _number(value.get("start"))
        and _number(value.get("end"))
    )


def _series(value: Any) -> bool:
    """``{"start", "interval", "bytes": [...]}``."""
    return (
        isinstance(value, dict)
        and _number(value.get("start"))
        and _number(value.get("interval"))
        and isinstance(value.get("bytes"), list)
        and all(_number(b) for b in value["bytes"])
    )


_STRING = ("a string", lambda v: isinstance(v, str))
_STRING_OR_NULL = ("a string or null", _or_null(lambda v: isinstance(v, str)))
_INTEGER = ("an integer", _integer)
_NUMBER = ("a finite number", _number)
_BOOLEAN = ("true or false", lambda v: isinstance(v, bool))

#: field -> (what it must be, for people; the check). ``bytes`` was null in verify-write
#: by fs-checksum (older runs) when the size could not be read
_FIELD_TYPES: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    "run_id": _STRING,
    "phase": _STRING,
    "node": _STRING,
    "client": _INTEGER,
    "host": _STRING,
    "backend": _STRING,
    "path": _STRING,
    "local_path": _STRING_OR_NULL,
    "status": _STRING,
    "error": _STRING_OR_NULL,
    "detail": _STRING_OR_NULL,
    "bytes": ("an integer or null", _or_null(_integer)),
    "start": _NUMBER,
    "end": _NUMBER,
    "ready": _NUMBER,
    "checksum": _STRING_OR_NULL,
    "expected_bytes": ("an integer or null", _or_null(_integer)),
    "expected_checksum": _STRING_OR_NULL,
    "algorithm": _STRING,
    "method": _STRING_OR_NULL,
    "replaced": _BOOLEAN,
    "clock_offset": _NUMBER,
    "latency": ("null or an object of objects", _or_null(_objects())),
    "series": ('null or {"start", "interval", "bytes": [numbers]}', _or_null(_series)),
    "files": _INTEGER,
    "ops": ('null or kinds of {"count", "start", "end"}', _or_null(_objects(_op))),
    "iteration": _INTEGER,
    "cluster": _STRING_OR_NULL,
    "warmup": _BOOLEAN,
    "made": ("null or a list of strings", _or_null(_strings)),
    "found": ("null or an object of strings", _or_null(_objects(lambda v: isinstance(v, str)))),
    "threads": ("an integer or null", _or_null(_integer)),
    "schema": _STRING,
}
# every field has its check (a field without one would be dropped on load)
assert set(_FIELD_TYPES) == {f.name for f in fields(ClientResult)}, "results: _FIELD_TYPES"
_REQUIRED: List[str] = [
    f.name for f in fields(ClientResult) if f.default is MISSING and f.default_factory is MISSING
]


def elide(text: str, limit: int, marker: str = " ... ") -> str:
    """``text`` if it has at most ``limit`` characters, else its start and its end with
    ``marker`` between them (both ends: a chain's root cause and its last step)."""
    if len(text) <= limit:
        return text
    head = (limit - len(marker)) // 2
    tail = limit - len(marker) - head
    return text[:head] + marker + text[len(text) - tail :]


def one_line(text: str, limit: int = ERROR_LIMIT) -> str:
    """``text`` on one line (each run of white space one space), elided to ``limit``."""
    return elide(" ".join(text.split()), limit)


def error_cause(error: Optional[str], host: str, path: str) -> str:
    """A record's error without the ``HOST: PATH: `` it begins with, for a line that names
    the client and its path already; one line, bounded."""
    cause = error or ""
    prefix = f"{host}: {path}: "
    if cause.startswith(prefix):
        cause = cause[len(prefix) :]
    return one_line(cause)


def outcome(status: str, error: Optional[str], host: str, path: str) -> str:
    """``STATUS: CAUSE`` (:func:`error_cause`), or the status alone when there is no error."""
    cause = error_cause(error, host, path)
    return f"{status}: {cause}" if cause else status


def error_detail(exc: BaseException) -> str:
    """The ``detail`` of a record whose error is ``exc``: its traceback with the whole
    chain of causes, bounded to DETAIL_LIMIT characters."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return elide("".join(lines), DETAIL_LIMIT, "\n...\n")


def write_lines(results: list[ClientResult], stream: IO[str]) -> None:
    for result in results:
        stream.write(result.to_json() + "\n")


def write_file(results: list[ClientResult], path: str) -> None:
    """Write JSON lines to ``path`` atomically (temporary file, then rename); dirs created."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".parbench-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            write_lines(results, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_lines(
    stream: Iterable[str], source: str = "<stream>", damaged: Optional[List[str]] = None
) -> Iterator[ClientResult]:
    """Parse JSON lines; a malformed line raises ValueError naming ``source`` and line
    (with ``damaged``, it is left out and that line appended there instead)."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = ClientResult.from_dict(json.loads(line))
        except (ValueError, TypeError) as exc:
            if damaged is None:
                raise ValueError(f"{source}:{number}: {exc}") from exc
            damaged.append(f"{source}:{number}: {exc}")
            continue
        yield record


# --- the format of a record's ``latency``: mergeable latency histograms ------------------
#
# Mergeable latency histograms with log-linear buckets (HdrHistogram's layout).
#
# Values are whole microseconds. Below ``2**BITS`` every value has a bucket of its own;
# above, each power of two is cut into ``2**(BITS-1)`` equal buckets, so a bucket is never
# wider than ``2**-(BITS-1)`` of its lower bound. A percentile is reported as the middle of
# its bucket (clamped to the exact min and max), hence within ``2**-BITS`` (0.4 %) of the
# exact nearest-rank percentile, or 1 us below ``2**BITS`` us. Values above ``HIGHEST``
# (about 12.7 days) count in the last bucket; ``max`` stays exact.
#
# The buckets in use are kept sparse: at most ``BUCKETS`` whatever the number of values,
# so a histogram's size is bounded by the range of its values, not by the run's length.
# Merging adds counts; it is associative and commutative, so per-client histograms merge
# into per-node and per-phase ones in any order. Stdlib only, Python 3.9+ (part of the
# records the worker sends the controller).

#: significant bits of a bucket's lower bound
BITS = 8
_SUB = 1 << BITS
_HALF = _SUB >> 1
#: the largest value with a bucket of its own (larger ones are counted as this): 2**40 us
HIGHEST = (1 << 40) - 1
#: the percentiles summaries report (``p99.9`` is 99.9)
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def bucket_of(value: int) -> int:
    """The index of the bucket that counts ``value`` (us, clamped to 0..HIGHEST)."""
    value = min(max(value, 0), HIGHEST)
    if value < _SUB:
        return value
    shift = value.bit_length() - BITS
    return _SUB + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def bounds_of(index: int) -> tuple[int, int]:
    """The values (us) bucket ``index`` counts: ``low <= v <= high``."""
    if index < _SUB:
        return index, index
    shift = (index - _SUB) // _HALF + 1
    mantissa = (index - _SUB) % _HALF + _HALF
    low = mantissa << shift
    return low, low + (1 << shift) - 1


#: the most buckets a histogram can use (4,352 with BITS 8)
BUCKETS = bucket_of(HIGHEST) + 1


def nearest_rank(q: float, count: int) -> int:
    """The 1-based rank of the ``q``-th percentile of ``count`` values, in exact
    arithmetic (99.9 / 100 * 1000 is 1000.0000000000001 in floating point)."""
    return max(math.ceil(Fraction(str(q)) * count / 100), 1)


class Histogram:
    """Counts of microsecond values in log-linear buckets, with exact count/min/max/sum."""

    __slots__ = ("counts", "count", "min", "max", "total")

    def __init__(self) -> None:
        self.counts: Dict[int, int] = {}
        self.count = 0
        self.min = 0
        self.max = 0
        self.total = 0  # sum of the values, for the mean

    def record(self, value: int, times: int = 1) -> None:
        """Count ``value`` (us; negative counts as 0) ``times`` times."""
        value = max(int(value), 0)
        index = bucket_of(value)
        self.counts[index] = self.counts.get(index, 0) + times
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += times
        self.total += value * times

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s counts to this one; returns self."""
        if other.count == 0:
            return self
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total
        return self

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        out = cls()
        for histogram in histograms:
            out.merge(histogram)
        return out

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (us) within the stated precision; 0 when empty."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within 0..100, got {q}")
        if self.count == 0:
            return 0.0
        rank = nearest_rank(q, self.count)
        if rank >= self.count:  # the largest value is known exactly
            return float(self.max)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bounds_of(index)
                return float(min(max((low + high) / 2, self.min), self.max))
        return float(self.max)  # not reached: the counts add up to count

    def summary(self) -> Dict[str, float]:
        """count, mean, min, the PERCENTILES (``p50`` .. ``p99.9``) and max, in us."""
        out: Dict[str, float] = {"count": self.count, "mean": self.mean, "min": self.min}
        for q in PERCENTILES:
            out[f"p{q:g}"] = self.percentile(q)
        out["max"] = self.max
        return out

    def bins(self) -> List[Tuple[int, int, int]]:
        """``(low, high, count)`` of every bucket holding values, low to high (us, inclusive)."""
        return [(*bounds_of(i), self.counts[i]) for i in sorted(self.counts)]

    def to_dict(self) -> dict:
        """JSON-able: buckets as ``[index, count]`` pairs in index order."""
        return {
            "unit": "us",
            "bits": BITS,
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.total,
            "buckets": [[i, self.counts[i]] for i in sorted(self.counts)],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Histogram:
        """The histogram of :meth:`to_dict`; ValueError when it is not one this can read."""
        if data.get("unit") != "us" or data.get("bits") != BITS:
            raise ValueError(
                f"histogram of unit {data.get('unit')!r} with {data.get('bits')!r} bits, "
                f"expected 'us' with {BITS}"
            )
        out = cls()
        pairs: List[List[int]] = data.get("buckets", [])
        for index, count in pairs:
            if not (0 <= int(index) < BUCKETS and int(count) > 0):
                raise ValueError(f"histogram bucket [{index}, {count}] out of range")
            out.counts[int(index)] = out.counts.get(int(index), 0) + int(count)
        out.count, out.total = int(data["count"]), int(data["sum"])
        out.min, out.max = int(data["min"]), int(data["max"])
        total = sum(out.counts.values())
        if total != out.count:
            raise ValueError(f"histogram buckets add up to {total}, not {out.count}")
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, min={self.min}, max={self.max})"
