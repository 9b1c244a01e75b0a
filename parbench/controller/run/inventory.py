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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

# what the worker accepts is what the inventory accepts
from parbench.worker.protocol import NODE_ID

from . import checks, hosts
from . import flags as flagging
from . import settings as declared
from .checks import MAX_CLIENTS, Check, InventoryError
from .iterations import IterationPlan, IterationPlanError
from .labels import check_labels
from .nodekeys import NODE_DEFAULTS, NODE_KEYS, SSH_KEYS, node_defaults
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
    s3_endpoint: str | None  # None: the S3 API of each node's proxy
    s3_addressing: str
    s3_region: str
    s3_profile: str | None
    s3_access_key: str | None
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
    #: the ssh config read for what the inventory leaves unset (None: none)
    config: Path | None = field(default_factory=lambda: _home_file(".ssh/config"))

    def __post_init__(self) -> None:
        if isinstance(self.config, str):  # as a run seals it (controller/run/seal.py)
            object.__setattr__(self, "config", Path(self.config))


def _home_file(name: str) -> Path | None:
    try:
        return Path.home() / name
    except RuntimeError:  # no HOME and no passwd entry
        return None


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

_SSH_KEYS = tuple(s.name for s in SSH_KEYS)
_NODE_KEYS = tuple(s.name for s in NODE_KEYS)
_PORT = NODE_KEYS[_NODE_KEYS.index("port")]


def _build(doc: Any, check: Check, path: Path) -> Inventory:
    if doc is None:
        check.fail("", "the inventory is empty; expected a mapping with a 'nodes' list")
    doc = check.mapping("", doc, ("defaults", "ssh", "labels", "nodes"))
    defaults = _or_empty(doc.get("defaults"))
    settings = _settings(check, defaults)
    given = node_defaults(check, defaults)
    labels = check_labels(
        _or_empty(doc.get("labels")),
        lambda key, what, value: check.expect(f"labels.{key}" if key else "labels", what, value),
    )
    ssh = _ssh(check, _or_empty(doc.get("ssh")))
    try:
        config = hosts.ssh_config(ssh.config)
    except hosts.SshConfigError as exc:
        check.fail("ssh.config", str(exc))
    built: list[Node] = []
    places: list[tuple[str, str]] = []
    for where, raw in _entries(check, doc):
        for node, note in _node(check, where, raw, settings, given, config):
            built.append(node)
            places.append((where, note))
            if len(built) > hosts.MAX_NODES:
                check.fail(where, f"more than {hosts.MAX_NODES} nodes")
    nodes = tuple(built)
    checks.unique(check, nodes, places)
    checks.shared_copies(check, settings.local_dst, nodes)
    return Inventory(
        path=path,
        settings=settings,
        ssh=ssh,
        nodes=nodes,
        raw=doc,
        labels=labels,
    )


def _entries(check: Check, doc: dict) -> list[tuple[str, Any]]:
    """``nodes``: a list of nodes (mappings, or hosts), or a hostfile (a host a line)."""
    if "nodes" not in doc:
        check.fail("nodes", "missing; expected a non-empty list of nodes")
    nodes = doc["nodes"]
    if isinstance(nodes, str):
        nodes = hosts.hostfile(nodes)
    if not isinstance(nodes, list) or not nodes:
        check.expect("nodes", "a non-empty list of nodes", doc["nodes"])
    return [(f"nodes[{i}]", raw) for i, raw in enumerate(nodes)]


def _or(value: Any, default: Any, validate: Callable[[Any], Any]) -> Any:
    """A node's own value, validated, else the run-wide default."""
    return default if value is None else validate(value)


def _or_empty(value: Any) -> Any:
    """An empty section (``defaults:`` with nothing under it) parses as null."""
    return {} if value is None else value


def _settings(check: Check, raw: Any) -> Settings:
    raw = check.mapping("defaults", raw, (*declared.BY_NAME, *NODE_DEFAULTS))
    settings = Settings(**declared.check_all(check, raw))
    try:
        settings.iteration_plan.check()
    except IterationPlanError as exc:
        check.fail("defaults", str(exc))
    if settings.backend == "s3":
        checks.bucket(check, "defaults.dst", settings.dst)
    return settings


def _ssh(check: Check, raw: Any) -> SshSettings:
    raw = check.mapping("ssh", raw, _SSH_KEYS)
    strict = check.boolean("ssh.strict_host_keys", raw.get("strict_host_keys", True))
    known = raw.get("known_hosts", "~/.ssh/known_hosts")
    if known is None and strict:
        check.fail("ssh.known_hosts", "required when ssh.strict_host_keys is true")
    path = None if known is None else check.local_path("ssh.known_hosts", known)
    config: Path | None = None
    if "config" not in raw:
        config = _home_file(".ssh/config")
    elif raw["config"] is not None:
        config = check.local_path("ssh.config", raw["config"])
    return SshSettings(
        known_hosts=path,
        strict_host_keys=strict,
        forward_agent=check.boolean("ssh.forward_agent", raw.get("forward_agent", False)),
        ssh_config_keys=check.boolean("ssh.ssh_config_keys", raw.get("ssh_config_keys", False)),
        config=config,
    )


def _node(
    check: Check,
    where: str,
    raw: Any,
    settings: Settings,
    given: dict[str, Any],
    config: Any,
) -> list[tuple[Node, str]]:
    """The nodes of entry ``where`` (one, or one per host of a range), each with a note
    that tells it from the entry's others (its host) for the messages."""
    if isinstance(raw, str):  # a bare host: `- edge001.example.com`
        raw = {"host": raw}
    raw = check.mapping(where, raw, _NODE_KEYS)
    at = partial(checks.join, where)
    if "host" not in raw:
        check.fail(at("host"), "missing; every node needs a host")
    pattern = check.string(at("host"), raw["host"])
    names, ids = _expand(check, at("host"), pattern), [None]
    if raw.get("id") is not None:
        ids = _expand(check, at("id"), check.string(at("id"), raw["id"]))
        if len(ids) != len(names):
            check.fail(
                at("id"),
                f"{raw['id']!r} names {len(ids)} node(s) and host {pattern!r} {len(names)};"
                " give as many ids as hosts, or leave id out (derived from each host)",
            )
    elif len(names) > 1:
        ids = [None] * len(names)
    user = (
        given.get("user")
        if raw.get("user") is None
        else checks.user(check, at("user"), raw["user"])
    )
    port = given.get("port")
    if raw.get("port") is not None:
        port = check.integer(at("port"), raw["port"], int(_PORT.low), int(_PORT.high))
    key = given.get("key") if raw.get("key") is None else check.local_path(at("key"), raw["key"])
    workdir = given.get("workdir")
    if raw.get("workdir") is not None:
        workdir = check.remote_path(at("workdir"), raw["workdir"])
    home, root = raw.get("alluxio_home"), raw.get("posix_root")
    if root is None and settings.backend == "posix" and settings.posix_root is None:
        check.fail(
            at("posix_root"),
            "required when defaults.backend is posix and defaults.posix_root is not set",
        )
    python = check.string(at("python"), raw.get("python", settings.python))
    clients = check.integer(at("clients"), raw.get("clients", settings.clients), 1, MAX_CLIENTS)
    proxy = declared.proxy(check, at("proxy"), raw.get("proxy", {}), settings.proxy)
    alluxio_home = _or(
        home, given.get("alluxio_home"), partial(check.remote_path, at("alluxio_home"))
    )
    posix_root = _or(root, settings.posix_root, partial(check.remote_path, at("posix_root")))
    if alluxio_home is None and settings.backend == "native":
        check.fail(
            at("alluxio_home"),
            "required by backend native (it runs {alluxio_home}/bin/alluxio runClass"
            " StressClientIOBench on the node); set it or choose another backend",
        )
    built = []
    for name, nid in zip(names, ids):
        host = checks.host(check, where, name)
        note = f" (host {host})" if len(names) > 1 else ""
        if nid is None:
            nid = hosts.derived_id(host)
            if not NODE_ID.fullmatch(nid):
                check.fail(
                    at("id"),
                    f"not given, and {nid!r} (from host {host!r}) is no valid id (a string"
                    f" matching {NODE_ID.pattern}); give an id",
                )
            note = f" (derived from host {host})"
        else:
            check.string(at("id"), nid, NODE_ID)
        said = hosts.ssh_settings(config, host) if user is None or port is None else {}
        node_user = user
        if node_user is None:
            origin = f"{at('user')} (User of {host} in the ssh config)"
            node_user = checks.user(
                check, origin if "user" in said else at("user"), said.get("user")
            )
        node_port = port
        if node_port is None:
            node_port = 22
            if "port" in said:
                origin = f"{at('port')} (Port of {host} in the ssh config)"
                number = int(said["port"]) if said["port"].isdigit() else said["port"]
                node_port = check.integer(origin, number, int(_PORT.low), int(_PORT.high))
        node_workdir = workdir
        if node_workdir is None:
            node_workdir = check.remote_path(at("workdir"), f"/tmp/parbench-{node_user}")
        checks.local_dst(check, settings.local_dst, where, node_workdir)
        node = Node(
            id=nid,
            host=host,
            port=node_port,
            user=node_user,
            key=key,
            workdir=node_workdir,
            python=python,
            clients=clients,
            proxy=proxy,
            alluxio_home=alluxio_home,
            posix_root=posix_root,
        )
        built.append((node, note))
    return built


def _expand(check: Check, where: str, pattern: str) -> list[str]:
    if not hosts.is_range(pattern):
        return [pattern]
    try:
        return hosts.expand(pattern)
    except hosts.RangeError as exc:
        check.fail(where, str(exc))
