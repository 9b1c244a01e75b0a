"""Load and validate the cluster inventory (``inventory.yaml``).

Every problem raises :class:`InventoryError` naming the file, the key path and what was
expected, e.g. ``inventory.yaml: nodes[2].host: expected a non-empty string, got 5``.
Unknown keys are errors. Local paths (``data``, ``key``, ``known_hosts``) are resolved
against the inventory's directory with ``~`` expanded; remote paths are POSIX strings,
normalised, and may not contain ``..`` or be ``/``. Files are not required to exist yet
(the testbed creates its keys later); the commands that use them check. YAML anchors and
merge keys (``<<: *first``) work; a key written twice in one mapping is an error.

The dataclasses and how a document builds them are here; the validating helpers, and
the limits a value must keep, are in controller/run/checks.py.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NoReturn

# what the worker accepts is what the inventory accepts
from worker.protocol import NODE_ID

from . import checks
from . import flags as flagging
from . import settings as declared
from .checks import MAX_CLIENTS, Check, InventoryError
from .iterations import IterationPlan, IterationPlanError
from .settings import Proxy


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
    """Run-wide settings (``defaults:``), as checked: each is declared, with its unit,
    default, limits and help, in controller/run/settings.py (one field here per
    declaration, in its order). ``chunk_size`` in bytes, ``data`` absolute."""

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
    latency: bool
    series_interval: float  # 0: no series
    iterations: int
    warmup: int
    until_stable: float | None
    stable_window: int
    max_iterations: int
    duration: float | None
    meta_files: int
    meta_size: int
    max_start_skew: float
    min_phase_seconds: float
    short_phase_seconds: float
    fanout: int
    request_timeout: float | None  # None: the phase's budget (plan.phase_budget)

    @property
    def iteration_plan(self) -> IterationPlan:
        return IterationPlan(
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
    #: the workload flags the command gave (setting -> checked value, controller/run/flags.py),
    #: applied over the document: sealed in a run, so that a later command applies them again
    flags: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes)

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


def load(path: str | os.PathLike, flags: Mapping[str, Any] | None = None) -> Inventory:
    """Read and validate the inventory at ``path``, with the workload ``flags`` a task was
    given (option -> value as typed, None: not given) over its ``defaults:``."""
    given = flagging.checked(flags or {})
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
    return _flagged(checks.parse(text, source), Check(source, path.parent), path, given)


def with_flags(inventory: Inventory, given: Mapping[str, Any]) -> Inventory:
    """``inventory`` (its document) with ``given`` flags (setting -> checked value, as an
    Inventory keeps them) over it: today's inventory as a run's flags made the run's."""
    path = inventory.path
    return _flagged(inventory.raw, Check(str(path), path.parent), path, dict(given))


def _flagged(doc: Any, check: Check, path: Path, given: dict[str, Any]) -> Inventory:
    built = _build(flagging.applied(doc, given), check, path)
    return replace(built, flags=given) if given else built


def build(doc: Any, path: Path) -> Inventory:
    """Validate an inventory document as parsed from the YAML at ``path`` (a sweep's
    points are documents changed from the user's)."""
    return _build(doc, Check(str(path), path.parent), path)


# --- building ----------------------------------------------------------------------------

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


def _build(doc: Any, check: Check, path: Path) -> Inventory:
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
    checks.unique(check, built)
    checks.shared_copies(check, settings.local_dst, built)
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


def _or(value: Any, default: Any, validate: Callable[[Any], Any]) -> Any:
    """A node's own value, validated, else the run-wide default."""
    return default if value is None else validate(value)


def _or_empty(value: Any) -> Any:
    """An empty section (``defaults:`` with nothing under it) parses as null."""
    return {} if value is None else value


def _settings(check: Check, raw: Any) -> Settings:
    raw = check.mapping("defaults", raw, declared.BY_NAME)
    settings = Settings(**declared.check_all(check, raw))
    try:
        settings.iteration_plan.check()
    except IterationPlanError as exc:
        check.fail("defaults", str(exc))
    return settings


def _ssh(check: Check, raw: Any) -> SshSettings:
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


def _node(check: Check, where: str, raw: Any, settings: Settings) -> Node:
    raw = check.mapping(where, raw, _NODE_KEYS)
    at = partial(checks.join, where)
    for key in ("id", "host"):
        if key not in raw:
            check.fail(at(key), "missing; every node needs an id and a host")
    nid = check.string(at("id"), raw["id"], NODE_ID)
    host = checks.host(check, where, raw["host"])
    user = checks.user(check, at("user"), raw.get("user"))
    workdir = check.remote_path(at("workdir"), raw.get("workdir", f"/tmp/parbench-{user}"))
    checks.local_dst(check, settings.local_dst, where, workdir)
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
        proxy=declared.proxy(check, at("proxy"), raw.get("proxy", {}), settings.proxy),
        alluxio_home=_or(home, None, partial(check.remote_path, at("alluxio_home"))),
        posix_root=_or(root, settings.posix_root, partial(check.remote_path, at("posix_root"))),
    )
