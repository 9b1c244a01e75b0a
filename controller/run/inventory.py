"""Load and validate the cluster inventory (``inventory.yaml``).

Every problem raises :class:`InventoryError` naming the file, the key path and what was
expected, e.g. ``inventory.yaml: nodes[2].host: expected a non-empty string, got 5``.
Unknown keys are errors. Local paths (``data``, ``key``, ``known_hosts``) are resolved
against the inventory's directory with ``~`` expanded; remote paths are POSIX strings,
normalised, and may not contain ``..`` or be ``/``. Files are not required to exist yet
(the testbed creates its keys later); the commands that use them check. YAML anchors and
merge keys (``<<: *first``) work; a key written twice in one mapping is an error.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import posixpath
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, NoReturn

import yaml

# what the worker accepts is what the inventory accepts
from worker.protocol import (
    BACKENDS,
    MIN_INTERVAL,
    NODE_ID,
    ON_EXISTING,
    READ_TYPES,
    WRITE_TYPES,
)

from .rounds import MAX_ITERATIONS, MAX_WARMUP, Rounds, RoundsError, seconds_of

MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 1024**3
MAX_GENERATED = 64 * 1024**3  # data: a size generated on the nodes
MAX_CLIENTS = 1024  # per node
MIN_START_DELAY = 0.01  # seconds
MAX_START_DELAY = 3600.0  # seconds
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds: ready_timeout, connect_timeout, phase_timeout

#: what a node's workdir holds for parbench itself (``.parbench*``: marker files); read
#: copies (``local_dst``) may not go into any of these, nor onto the workdir or above it
WORKDIR_ENTRIES = ("worker", "data", "wheels", "venv", "runs", ".parbench*")

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", re.ASCII)  # no "²", no "٣"
_TOKEN = re.compile(r"[^\s/]+")  # host names and users: no whitespace, no slash


class InventoryError(ValueError):
    """The inventory is missing, unreadable or invalid; the message says where and why."""


@dataclass(frozen=True)
class Proxy:
    """Alluxio REST proxy address as seen from the nodes."""

    host: str
    port: int


@dataclass(frozen=True)
class Node:
    """One client machine, reached over SSH."""

    id: str
    host: str
    port: int
    user: str
    key: Path | None
    workdir: str
    python: str
    clients: int
    proxy: Proxy
    alluxio_home: str | None
    posix_root: str | None  # posix backend: where this node mounts the shared storage


@dataclass(frozen=True)
class Settings:
    """Run-wide settings (``defaults:``); ``chunk_size`` in bytes, ``data`` absolute."""

    clients: int
    backend: str
    dst: str
    local_dst: str
    data: Path | int  # the reference file, or the size of data generated on every node
    proxy: Proxy
    posix_root: str | None
    write_type: str
    read_type: str
    chunk_size: int
    on_existing: str
    start_delay: float | None  # None: ``auto``, from the nodes' round trips (startgate.py)
    ready_timeout: float
    connect_timeout: float
    phase_timeout: float
    python: str
    latency: bool = True  # per-operation latency histograms
    series_interval: float = 1.0  # seconds per point of throughput over time; 0: none
    iterations: int = 1  # measured iterations of a timed phase
    warmup: int = 0  # iterations before them, not in the statistics
    until_stable: float | None = None  # repeat until the last stable_window agree within it
    stable_window: int = 3
    max_iterations: int = 10
    duration: float | None = None  # seconds a write or read phase moves files
    meta_files: int = 100  # fab meta: files each client creates, stats, lists, deletes
    meta_size: int = 0  # ... of this many bytes each
    max_start_skew: float = 0.1  # seconds; more makes a phase invalid
    min_phase_seconds: float = 0.0  # an iteration shorter than this is invalid; 0: any
    fanout: int = 64  # nodes pushed, locked or cleaned at once (a timed phase: all at once)

    @property
    def rounds(self) -> Rounds:
        return Rounds(
            self.iterations,
            self.warmup,
            self.until_stable,
            self.stable_window,
            self.max_iterations,
            self.duration,
        )


@dataclass(frozen=True)
class SshSettings:
    """Host key policy; ``known_hosts`` None only when strict checking is off. What
    ``~/.ssh/config`` may add to a connection, off unless asked for: forwarding the SSH
    agent to the nodes, and its ``IdentityFile`` keys (else only ``nodes[].key``, or
    without one the agent and ``~/.ssh/id_*``)."""

    known_hosts: Path | None
    strict_host_keys: bool
    forward_agent: bool = False
    ssh_config_keys: bool = False


@dataclass(frozen=True)
class Inventory:
    """A validated inventory; ``raw`` is the YAML document as parsed."""

    path: Path
    settings: Settings
    ssh: SshSettings
    nodes: tuple[Node, ...]
    raw: dict = field(compare=False, repr=False)
    #: what a person says about the runs (cluster, build, ...): kept in each run,
    #: never what defines the benchmark
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes)

    @property
    def total_clients(self) -> int:
        return sum(n.clients for n in self.nodes)

    def node(self, nid: str) -> Node:
        """The node with id ``nid``; KeyError naming the known ids otherwise."""
        for candidate in self.nodes:
            if candidate.id == nid:
                return candidate
        raise KeyError(f"{self.path.name}: no node {nid!r} (known: {', '.join(self.node_ids)})")

    def clients_by_node(self) -> dict[str, int]:
        """Node id -> client processes, in inventory order."""
        return {n.id: n.clients for n in self.nodes}

    def local_dst(self, node: Node | str) -> str:
        """Directory on ``node`` where read copies go (``{local_dst}/{cid}``)."""
        workdir = (self.node(node) if isinstance(node, str) else node).workdir
        return posixpath.join(workdir, self.settings.local_dst)


def load(path: str | os.PathLike) -> Inventory:
    """Read and validate the inventory at ``path``."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(
            f"{source}: inventory file not found (start from inventory.example.yaml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{source}: cannot read the inventory: {exc}") from None
    path = path.resolve()
    return _build(_parse(text, source), _Check(source, path.parent), path)


def build(doc: Any, path: Path) -> Inventory:
    """Validate an inventory document as parsed from the YAML at ``path`` (a sweep's
    points are documents changed from the user's)."""
    return _build(doc, _Check(str(path), path.parent), path)


# --- parsing -----------------------------------------------------------------------------


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which would silently override each other.

    Each mapping is checked as written, before PyYAML copies merged (``<<``) keys into it,
    so a key may override a merged one, as YAML specifies.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[yaml.Node] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if node not in self._checked:  # a merge flattens its source before the source's turn
            self._checked.add(node)
            self._refuse_duplicates(node)
        super().flatten_mapping(node)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        seen: dict = {}
        for key_node, _ in node.value:
            key = "<<" if key_node.tag == _MERGE_TAG else self.construct_object(key_node)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # unhashable key: reported by the construction
                continue
            if first is not key_node:
                line = first.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {line})", key_node.start_mark
                )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # e.g. an integer of 5000 digits, a date like 2024-13-45
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
            ) from None


def _parse(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise InventoryError(f"{source}: {where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{source}: invalid YAML: {exc}") from None


def _show(value: Any) -> str:
    """A value as the user wrote it, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Check:
    """Typed accessors that raise InventoryError naming the file and the key path."""

    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def fail(self, where: str, message: str) -> NoReturn:
        raise InventoryError(
            f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        )

    def expect(self, where: str, what: str, value: Any) -> NoReturn:
        self.fail(where, f"expected {what}, got {_show(value)}")

    def mapping(self, where: str, value: Any, known: Iterable[str]) -> dict:
        if not isinstance(value, dict):
            self.expect(where, "a mapping", value)
        known = tuple(known)
        for key in value:
            if key not in known:
                self.fail(_join(where, key), f"unknown key (known: {', '.join(known)})")
        return value

    def string(self, where: str, value: Any, pattern: re.Pattern | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.expect(where, "a non-empty string", value)
        if pattern is not None and not pattern.fullmatch(value):
            self.expect(where, f"a string matching {pattern.pattern}", value)
        return value

    def integer(self, where: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.expect(where, "an integer", value)
        if not low <= value <= high:
            self.expect(where, f"an integer between {low} and {high}", value)
        return value

    def seconds(self, where: str, value: Any, low: float, high: float) -> float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        # compared before any conversion: a 400-digit integer does not fit a float
        if not number or not low <= value <= high:  # also false for nan
            self.expect(where, f"a number of seconds between {low:g} and {high:g}", value)
        return float(value)

    def boolean(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.expect(where, "true or false", value)
        return value

    def choice(self, where: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.expect(where, f"one of {', '.join(choices)}", value)
        return value

    def size(
        self, where: str, value: Any, low: int = MIN_CHUNK_SIZE, high: int = MAX_CHUNK_SIZE
    ) -> int:
        """Bytes from an int or ``"<n>[KiB|MiB|GiB|KB|MB|GB]"``, ``low`` to ``high``."""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.expect(where, SIZE_FORMAT, value)
        # exact: 1.5MiB is whole bytes, 4096.9 is not (never truncated)
        size = Decimal(value) if isinstance(value, int) else size_of(value)
        if size is None:
            self.expect(where, SIZE_FORMAT, value)
        if not low <= size <= high:
            span = f"{low} and {high} bytes ({_in_units(low)} and {_in_units(high)})"
            self.expect(where, f"a size between {span}", value)
        if size != size.to_integral_value():
            self.expect(where, "a whole number of bytes", value)
        return int(size)

    def local_path(self, where: str, value: Any) -> Path:
        """A controller path; relative -> the inventory's directory, ``~`` expanded."""
        text = self.string(where, value)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # no HOME and no passwd entry for us (or no such ~user)
            self.fail(
                where,
                f"cannot expand '~' in {text!r}: no HOME and no passwd entry for uid"
                f" {os.getuid()} (or no such user); set HOME or write the path in full",
            )
        return Path(os.path.normpath(self.base / path))

    def remote_path(self, where: str, value: Any, relative: bool = False) -> str:
        """A normalised POSIX path on the nodes: no ``..``, not ``/`` (nor ``.``)."""
        text = self.string(where, value)
        if any(ord(c) < 32 for c in text):
            self.expect(where, "a path without control characters", value)
        if not relative and not text.startswith("/"):
            self.expect(where, "an absolute POSIX path", value)
        if ".." in text.split("/"):
            self.expect(where, "a path without '..'", value)
        norm = posixpath.normpath(text)
        if norm.startswith("//"):
            norm = "/" + norm.lstrip("/")
        if norm in ("/", "."):
            self.expect(where, "a directory below the root, not the root itself", value)
        return norm

    def proxy(self, where: str, value: Any, base: Proxy) -> Proxy:
        """A ``{host, port}`` mapping; missing fields come from ``base``."""
        value = self.mapping(where, value, ("host", "port"))
        at = _join(where, "host")
        host = _not_an_option(self, at, self.string(at, value.get("host", base.host), _TOKEN))
        if ":" in host:  # the worker's URL is http://{host}:{port}: no room for IPv6 there
            ipv6 = " (an IPv6 address is not supported for the proxy: use a host name)"
            self.fail(
                at,
                f"{host!r} includes a port; set it as {_join(where, 'port')}"
                + (ipv6 if _is_ipv6(host) else ""),
            )
        return Proxy(
            host=host,
            port=self.integer(_join(where, "port"), value.get("port", base.port), 1, 65535),
        )


#: what a size may be written as (``size_of``)
SIZE_FORMAT = 'a size in bytes or like "1MiB" (units B, KiB, MiB, GiB, KB, MB, GB)'


def size_of(text: str) -> Decimal | None:
    """The bytes ``text`` writes (``"64MiB"``, ``"1.5 GiB"``, ``"4096"``), exactly (not
    always whole: ``"4096.9"``); None when it is no size."""
    match = _SIZE.fullmatch(text)
    if not match or match.group(2).lower() not in _UNITS:
        return None
    return Decimal(match.group(1)) * _UNITS[match.group(2).lower()]


def _in_units(size: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if size >= _UNITS[unit.lower()] and size % _UNITS[unit.lower()] == 0:
            return f"{size // _UNITS[unit.lower()]}{unit}"
    return f"{size}B"


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


# --- building ----------------------------------------------------------------------------

_DEFAULT_PROXY = Proxy("127.0.0.1", 39999)
_Field = Callable[[_Check, str, Any], Any]

#: defaults: key -> (default as written in YAML, validator)
_SETTINGS: dict[str, tuple[Any, _Field]] = {
    "clients": (2, lambda c, w, v: c.integer(w, v, 1, MAX_CLIENTS)),
    "backend": ("alluxio", lambda c, w, v: c.choice(w, v, BACKENDS)),
    "dst": ("/parbench", lambda c, w, v: _run_root(c, w, v)),
    "local_dst": ("read", lambda c, w, v: c.remote_path(w, v, relative=True)),
    "data": ("data/5mb.txt", lambda c, w, v: _data(c, w, v)),
    "proxy": ({}, lambda c, w, v: c.proxy(w, v, _DEFAULT_PROXY)),
    "posix_root": (None, lambda c, w, v: None if v is None else c.remote_path(w, v)),
    "write_type": ("CACHE_THROUGH", lambda c, w, v: c.choice(w, v, WRITE_TYPES)),
    "read_type": ("CACHE", lambda c, w, v: c.choice(w, v, READ_TYPES)),
    "chunk_size": ("1MiB", lambda c, w, v: c.size(w, v)),
    "on_existing": ("replace", lambda c, w, v: c.choice(w, v, ON_EXISTING)),
    "start_delay": ("auto", lambda c, w, v: _start_delay(c, w, v)),
    "ready_timeout": (120, lambda c, w, v: c.seconds(w, v, 1, MAX_TIMEOUT)),
    "connect_timeout": (15, lambda c, w, v: c.seconds(w, v, 1, MAX_TIMEOUT)),
    "phase_timeout": (1800, lambda c, w, v: c.seconds(w, v, 1, MAX_TIMEOUT)),
    "python": ("python3", lambda c, w, v: c.string(w, v)),
    "latency": (True, lambda c, w, v: c.boolean(w, v)),
    "series_interval": (1, lambda c, w, v: _interval(c, w, v)),
    "iterations": (1, lambda c, w, v: c.integer(w, v, 1, MAX_ITERATIONS)),
    "warmup": (0, lambda c, w, v: c.integer(w, v, 0, MAX_WARMUP)),
    "until_stable": (None, lambda c, w, v: _coefficient(c, w, v)),
    "stable_window": (3, lambda c, w, v: c.integer(w, v, 2, MAX_ITERATIONS)),
    "max_iterations": (10, lambda c, w, v: c.integer(w, v, 2, MAX_ITERATIONS)),
    "duration": (None, lambda c, w, v: _duration(c, w, v)),
    "meta_files": (100, lambda c, w, v: c.integer(w, v, 1, 1_000_000)),
    "meta_size": (0, lambda c, w, v: c.size(w, v, 0, 1024**3)),
    "max_start_skew": (0.1, lambda c, w, v: c.seconds(w, v, 0.001, MAX_START_DELAY)),
    "min_phase_seconds": (0, lambda c, w, v: c.seconds(w, v, 0, MAX_TIMEOUT)),
    "fanout": (64, lambda c, w, v: c.integer(w, v, 1, 100_000)),
}
_SSH_KEYS = ("known_hosts", "strict_host_keys", "forward_agent", "ssh_config_keys")
_NODE_KEYS = (
    "id",
    "host",
    "port",
    "user",
    "key",
    "workdir",
    "python",
    "clients",
    "proxy",
    "alluxio_home",
    "posix_root",
)


def _build(doc: Any, check: _Check, path: Path) -> Inventory:
    if doc is None:
        check.fail("", "the inventory is empty; expected a mapping with a 'nodes' list")
    doc = check.mapping("", doc, ("defaults", "ssh", "labels", "nodes"))
    settings = _settings(check, _or_empty(doc.get("defaults")))
    labels = check_labels(
        _or_empty(doc.get("labels")),
        lambda key, what, value: check.expect(f"labels.{key}" if key else "labels", what, value),
    )
    ssh = _ssh(check, _or_empty(doc.get("ssh")))
    if "nodes" not in doc:
        check.fail("nodes", "missing; expected a non-empty list of nodes")
    nodes = doc["nodes"]
    if not isinstance(nodes, list) or not nodes:
        check.expect("nodes", "a non-empty list of nodes", nodes)
    built = tuple(_node(check, f"nodes[{i}]", raw, settings) for i, raw in enumerate(nodes))
    _check_unique(check, built)
    _check_shared_copies(check, settings.local_dst, built)
    return Inventory(
        path=path,
        settings=settings,
        ssh=ssh,
        nodes=built,
        raw=doc,
        labels=labels,
    )


#: a label's name: what OpenMetrics accepts (they become metric labels)
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_LABEL_VALUE = 200
#: the labels parbench's own metrics carry (controller/exports.py): a run's label of the
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


def _or(value: Any, default: Any, validate: Callable[[Any], Any]) -> Any:
    """A node's own value, validated, else the run-wide default."""
    return default if value is None else validate(value)


def _or_empty(value: Any) -> Any:
    """An empty section (``defaults:`` with nothing under it) parses as null."""
    return {} if value is None else value


def _data(check: _Check, where: str, value: Any) -> Path | int:
    """``data``: a size (``1GiB``, or bytes) of data generated on every node, else the
    path of the reference file on the controller."""
    sized = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        sized = bool(match and match.group(2) and match.group(2).lower() in _UNITS)
    if sized:
        return check.size(where, value, 1, MAX_GENERATED)
    return check.local_path(where, value)


def _duration(check: _Check, where: str, value: Any) -> float | None:
    """``duration``: null, seconds, or a time like ``60s``, ``2m``, ``1h``."""
    if value is None:
        return None
    try:
        return seconds_of(value)
    except ValueError as exc:
        check.fail(where, str(exc))


def _start_delay(check: _Check, where: str, value: Any) -> float | None:
    """``start_delay``: ``auto`` (None: the start gate works it out, startgate.py) or
    seconds."""
    if value == "auto":
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not MIN_START_DELAY <= value <= MAX_START_DELAY:  # also false for nan
        what = f"auto or a number of seconds between {MIN_START_DELAY:g} and {MAX_START_DELAY:g}"
        check.expect(where, what, value)
    return float(value)


def _interval(check: _Check, where: str, value: Any) -> float:
    """``series_interval``: 0 (no series) or MIN_INTERVAL..3600 seconds."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value == 0 or MIN_INTERVAL <= value <= 3600):
        span = f"0 (no series) or a number of seconds between {MIN_INTERVAL:g} and 3600"
        check.expect(where, span, value)
    return float(value)


def _coefficient(check: _Check, where: str, value: Any) -> float | None:
    """``until_stable``: null, or a coefficient of variation between 0 and 1 (0.05: 5 %)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and (not number or not 0 < value < 1):
        what = "null or a coefficient of variation between 0 and 1 (0.05 is 5 %)"
        check.expect(where, what, value)
    return None if value is None else float(value)


def _run_root(check: _Check, where: str, value: Any) -> str:
    """``dst``: one storage root for the whole run, so no ``{...}`` (nothing expands it)."""
    path = check.remote_path(where, value)
    if "{" in path or "}" in path:
        check.expect(
            where,
            "a path without '{' or '}' (dst is one root for the whole run; templates are not"
            " expanded there)",
            value,
        )
    return path


def _settings(check: _Check, raw: Any) -> Settings:
    raw = check.mapping("defaults", raw, _SETTINGS)
    values = {
        key: validate(check, f"defaults.{key}", raw.get(key, default))
        for key, (default, validate) in _SETTINGS.items()
    }
    settings = Settings(**values)
    try:
        settings.rounds.check()
    except RoundsError as exc:
        check.fail("defaults", str(exc))
    return settings


def _ssh(check: _Check, raw: Any) -> SshSettings:
    raw = check.mapping("ssh", raw, _SSH_KEYS)
    strict = check.boolean("ssh.strict_host_keys", raw.get("strict_host_keys", True))
    known = raw.get("known_hosts", "~/.ssh/known_hosts")
    if known is None and strict:
        check.fail("ssh.known_hosts", "required when ssh.strict_host_keys is true")
    path = None if known is None else check.local_path("ssh.known_hosts", known)
    return SshSettings(
        known_hosts=path,
        strict_host_keys=strict,
        forward_agent=check.boolean("ssh.forward_agent", raw.get("forward_agent", False)),
        ssh_config_keys=check.boolean("ssh.ssh_config_keys", raw.get("ssh_config_keys", False)),
    )


def _node(check: _Check, where: str, raw: Any, settings: Settings) -> Node:
    raw = check.mapping(where, raw, _NODE_KEYS)
    at = partial(_join, where)
    for key in ("id", "host"):
        if key not in raw:
            check.fail(at(key), "missing; every node needs an id and a host")
    nid = check.string(at("id"), raw["id"], NODE_ID)
    host = _host(check, where, raw["host"])
    user = _user(check, at("user"), raw.get("user"))
    workdir = check.remote_path(at("workdir"), raw.get("workdir", f"/tmp/parbench-{user}"))
    _check_local_dst(check, settings.local_dst, where, workdir)
    key, home, root = raw.get("key"), raw.get("alluxio_home"), raw.get("posix_root")
    if root is None and settings.backend == "posix" and settings.posix_root is None:
        check.fail(
            at("posix_root"),
            "required when defaults.backend is posix and defaults.posix_root is not set",
        )
    return Node(
        id=nid,
        host=host,
        port=check.integer(at("port"), raw.get("port", 22), 1, 65535),
        user=user,
        key=None if key is None else check.local_path(at("key"), key),
        workdir=workdir,
        python=check.string(at("python"), raw.get("python", settings.python)),
        clients=check.integer(at("clients"), raw.get("clients", settings.clients), 1, MAX_CLIENTS),
        proxy=check.proxy(at("proxy"), raw.get("proxy", {}), settings.proxy),
        alluxio_home=_or(home, None, partial(check.remote_path, at("alluxio_home"))),
        posix_root=_or(root, settings.posix_root, partial(check.remote_path, at("posix_root"))),
    )


def _not_an_option(
    check: _Check, where: str, value: str, what: str = "a host name or address"
) -> str:
    """A host or user name handed to ssh, curl or the worker's command line: never one
    that would be read as an option there."""
    if value.startswith("-"):
        check.fail(
            where, f"{value!r} begins with '-' (it would be read as an option); expected {what}"
        )
    return value


def _host(check: _Check, where: str, value: Any) -> str:
    """``{where}.host``: a name or address only; the user and port have keys of their own."""
    host = _not_an_option(
        check, _join(where, "host"), check.string(_join(where, "host"), value, _TOKEN)
    )
    if "@" in host:
        check.fail(_join(where, "host"), f"{host!r} includes a user; set it as {where}.user")
    if ":" in host and not _is_ipv6(host):  # a bare IPv6 address is fine
        check.fail(_join(where, "host"), f"{host!r} includes a port; set it as {where}.port")
    return host


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _user(check: _Check, where: str, value: Any) -> str:
    """The node's SSH user, by default the one running the controller."""
    if value is not None:
        return _not_an_option(check, where, check.string(where, value, _TOKEN), "a user name")
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no LOGNAME, USER, ... and no passwd entry for our uid
        check.fail(
            where,
            f"not set, and the controller's own user name is unknown (no LOGNAME or USER, no"
            f" passwd entry for uid {os.getuid()}); set {where}",
        )


def _check_local_dst(check: _Check, local_dst: str, where: str, workdir: str) -> None:
    """Read copies go neither onto the workdir (nor above it) nor into its own entries."""
    path = posixpath.join(workdir, local_dst)  # an absolute local_dst stays itself
    if path == workdir or workdir.startswith(path + "/"):
        check.fail(
            "defaults.local_dst",
            f"{local_dst!r} is or contains {where}.workdir ({workdir}); read copies go elsewhere",
        )
    if path.startswith(workdir + "/"):
        entry = path[len(workdir) + 1 :].split("/")[0]
        if any(fnmatchcase(entry, reserved) for reserved in WORKDIR_ENTRIES):
            check.fail(
                "defaults.local_dst",
                f"{local_dst!r} is inside {posixpath.join(workdir, entry)}, which {where}.workdir"
                f" keeps for parbench ({', '.join(WORKDIR_ENTRIES)}); choose another folder",
            )


def _check_unique(check: _Check, nodes: tuple[Node, ...]) -> None:
    """Ids are unique, even ignoring case (they name folders), and no two nodes share a
    workdir on the same SSH endpoint."""
    ids: dict[str, int] = {}
    places: dict[tuple[str, int, str], int] = {}
    for i, node in enumerate(nodes):
        first = ids.setdefault(node.id.lower(), i)
        if first != i:
            other = nodes[first].id
            check.fail(
                f"nodes[{i}].id",
                f"{node.id!r} is used by nodes[{first}] too"
                if other == node.id
                else f"{node.id!r} differs from nodes[{first}].id {other!r} only in case;"
                " ids name folders, and some file systems ignore case",
            )
        first = places.setdefault((node.host, node.port, node.workdir), i)
        if first != i:
            check.fail(
                f"nodes[{i}].workdir",
                f"{node.workdir!r} on {node.host}:{node.port} is used by nodes[{first}] too",
            )


def _machine(host: str) -> str:
    """What names one machine among the nodes' hosts: the name in lower case, an address
    as written canonically, and every loopback name or address as one."""
    name = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return "localhost" if name in ("localhost", "localhost.localdomain") else name
    return "localhost" if address.is_loopback else str(address)


def _check_shared_copies(check: _Check, local_dst: str, nodes: tuple[Node, ...]) -> None:
    """An absolute ``local_dst`` is one folder on each machine: two nodes on one host
    (whatever their ports: the testbed's nodes are two sshd on one machine) would write
    their read copies ``{local_dst}/{cid}`` over each other's."""
    if not local_dst.startswith("/"):
        return  # under each node's workdir, which differ
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        first = seen.setdefault(_machine(node.host), i)
        if first != i:
            other = nodes[first]
            check.fail(
                "defaults.local_dst",
                f"{local_dst!r} is one folder for nodes[{first}] ({other.id}, host"
                f" {other.host}) and nodes[{i}] ({node.id}, host {node.host}), one machine:"
                " their read copies would overwrite each other's; use a relative local_dst"
                " (under each node's workdir)",
            )
