"""The validating helpers behind the inventory (controller/run/inventory.py): the YAML
read with duplicate keys refused, typed accessors (:class:`Check`) that raise
:class:`InventoryError` naming the file and the key path, sizes like ``1MiB`` and times
like ``1m30s`` (in the grammar of ``worker.protocol.units``), the
limits a value must keep, and the checks of the nodes together (host and user names, read
copies' folders, one workdir per endpoint). Each setting's own check is derived from its
declaration (controller/run/settings.py).
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import posixpath
import re
from decimal import Decimal
from difflib import get_close_matches
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable, NoReturn, Protocol, Sequence

import yaml

from parbench.worker import layout
from parbench.worker.protocol import units

MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 1024**3
MAX_GENERATED = 64 * 1024**3  # data: a size generated on the nodes
MAX_CLIENTS = 1024  # per node
MAX_START_DELAY = 3600.0  # seconds
MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds: ready_timeout, connect_timeout, phase_timeout


class Placed(Protocol):
    """What the checks read of a node (controller/run/inventory.py's Node, which is built
    from them: this module does not import it)."""

    @property
    def id(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def workdir(self) -> str: ...


_BINARY = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}  # what in_units writes
TOKEN = re.compile(r"[^\s/]+")  # host names and users: no whitespace, no slash


class InventoryError(ValueError):
    """The inventory is missing, unreadable or invalid; the message says where and why."""


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


def parse(text: str, source: str) -> Any:
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


class Check:
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
                close = get_close_matches(str(key), known, n=1)
                if close:
                    self.fail(join(where, key), f"unknown key; did you mean {close[0]}?")
                self.fail(join(where, key), f"unknown key (known: {', '.join(known)})")
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
        """Seconds from a number or a time like ``90s``, ``1m30s``, ``2h``, ``1d``."""
        what = f"a duration between {low:g} and {high:g} s ({units.DURATION_LIKE})"
        try:
            seconds = units.parse_duration(value)
        except units.UnitError:
            self.expect(where, what, value)
        if not low <= seconds <= high:
            self.expect(where, what, value)
        return seconds

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
        """Bytes from an int or a size like ``4K``, ``1.5MiB``, ``2MB``
        (``worker.protocol.units``), ``low`` to ``high``."""
        try:
            size = units.parse_size(value)  # exact: 1.5MiB is whole bytes, 4096.9 is not
        except units.UnitError as exc:
            too_big = isinstance(value, int) or "below 2^63" in str(exc)
            if not too_big:
                self.fail(where, str(exc))
            size = high + 1
        if not low <= size <= high:
            span = f"{low} and {high} bytes ({in_units(low)} and {in_units(high)})"
            self.expect(where, f"a size between {span}", value)
        return size

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


#: what a size may be written as (``worker.protocol.units``)
SIZE_FORMAT = units.SIZE_FORMAT


def size_of(text: str) -> Decimal | None:
    """The bytes ``text`` writes (``"64MiB"``, ``"4K"``, ``"4096"``); None when it is no
    size in the grammar of ``worker.protocol.units``, or not whole bytes."""
    try:
        return Decimal(units.parse_size(text))
    except units.UnitError:
        return None


def in_units(size: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if size >= _BINARY[unit] and size % _BINARY[unit] == 0:
            return f"{size // _BINARY[unit]}{unit}"
    return f"{size}B"


def join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def data(check: Check, where: str, value: Any) -> Path | int:
    """``data``: a size (``1G``, ``1GiB``, or bytes) of data generated on every node, else
    the path of the reference file on the controller. A string is a path when it has a
    ``/`` or is not shaped like a size (a number, then letters: ``1G``, ``64 MiB``,
    ``5mb``); so ``data/5mb.txt``, ``/ref/5mb.txt`` and ``5mb.txt`` are files, and a file
    whose name looks like a size is written ``./1G``."""
    sized = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, str):
        sized = "/" not in value and units.looks_like_size(value)
    if sized:
        return check.size(where, value, 1, MAX_GENERATED)
    return check.local_path(where, value)


def not_an_option(
    check: Check, where: str, value: str, what: str = "a host name or address"
) -> str:
    """A host or user name handed to ssh, curl or the worker's command line: never one
    that would be read as an option there."""
    if value.startswith("-"):
        check.fail(
            where, f"{value!r} begins with '-' (it would be read as an option); expected {what}"
        )
    return value


def host(check: Check, where: str, value: Any) -> str:
    """``{where}.host``: a name or address only; the user and port have keys of their own."""
    host = not_an_option(
        check, join(where, "host"), check.string(join(where, "host"), value, TOKEN)
    )
    if "@" in host:
        check.fail(join(where, "host"), f"{host!r} includes a user; set it as {where}.user")
    if ":" in host and not is_ipv6(host):  # a bare IPv6 address is fine
        check.fail(join(where, "host"), f"{host!r} includes a port; set it as {where}.port")
    return host


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def user(check: Check, where: str, value: Any) -> str:
    """The node's SSH user, by default the one running the controller."""
    if value is not None:
        return not_an_option(check, where, check.string(where, value, TOKEN), "a user name")
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no LOGNAME, USER, ... and no passwd entry for our uid
        check.fail(
            where,
            f"not set, and the controller's own user name is unknown (no LOGNAME or USER, no"
            f" passwd entry for uid {os.getuid()}); set {where}",
        )


def local_dst(check: Check, local_dst: str, where: str, workdir: str) -> None:
    """Read copies go neither onto the workdir (nor above it) nor into its own entries."""
    path = posixpath.join(workdir, local_dst)  # an absolute local_dst stays itself
    if path == workdir or workdir.startswith(path + "/"):
        check.fail(
            "defaults.local_dst",
            f"{local_dst!r} is or contains {where}.workdir ({workdir}); read copies go elsewhere",
        )
    if path.startswith(workdir + "/"):
        entry = path[len(workdir) + 1 :].split("/")[0]
        entries = layout.reserved()  # what the node's workdir keeps for parbench
        if any(fnmatchcase(entry, reserved) for reserved in entries):
            check.fail(
                "defaults.local_dst",
                f"{local_dst!r} is inside {posixpath.join(workdir, entry)}, which {where}.workdir"
                f" keeps for parbench ({', '.join(entries)}); choose another folder",
            )


def unique(check: Check, nodes: tuple[Placed, ...], where: Sequence[tuple[str, str]] = ()) -> None:
    """Ids are unique, even ignoring case (they name folders), and no two nodes share a
    workdir on the same SSH endpoint. ``where[i]``: node i's entry (``nodes[3]``) and a
    note telling it from the entry's other nodes (`` (host edge042)``)."""
    where = list(where) or [(f"nodes[{i}]", "") for i in range(len(nodes))]
    ids: dict[str, int] = {}
    places: dict[tuple[str, int, str], int] = {}
    for i, node in enumerate(nodes):
        (entry, note), first = where[i], ids.setdefault(node.id.lower(), i)
        if first != i:
            other, (other_entry, other_note) = nodes[first].id, where[first]
            give = "; give ids (nodes[].id)" if "derived" in note + other_note else ""
            check.fail(
                f"{entry}.id",
                f"{node.id!r}{note} is used by {other_entry}{other_note} too{give}"
                if other == node.id
                else f"{node.id!r}{note} differs from {other_entry}.id {other!r} only in case;"
                " ids name folders, and some file systems ignore case",
            )
        first = places.setdefault((node.host, node.port, node.workdir), i)
        if first != i:
            check.fail(
                f"{entry}.workdir",
                f"{node.workdir!r} on {node.host}:{node.port} is used by"
                f" {where[first][0]}{where[first][1]} too",
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


def shared_copies(check: Check, local_dst: str, nodes: tuple[Placed, ...]) -> None:
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


#: an S3 bucket name (AWS's rules, which Alluxio's S3 API accepts as a top-level directory)
BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def bucket(check: Check, where: str, dst: str) -> str:
    """The bucket of an s3 run: ``dst``'s first segment, which must be a bucket name."""
    first = dst.strip("/").split("/")[0]
    if not BUCKET.fullmatch(first):
        check.fail(
            where,
            f"{dst!r}: with backend s3 the first segment is the bucket, and {first!r} is not a"
            " bucket name (3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit)",
        )
    return first
