"""Many nodes in a few lines, and what ``~/.ssh/config`` says of a host.

Host ranges: ``edge[001-100]`` is edge001 ... edge100 (the zero padding of the first
number kept), ``rack[1-2]-n[01-08].lan`` the 16 hosts rack1-n01.lan ... rack2-n08.lan (the
first range outermost), ``n[1-3,7]`` n1, n2, n3 and n7. A node's id, when not given, is
derived from its host (:func:`derived_id`). A hostfile (one host a line, ``#`` comments)
is a list of hosts.

The ssh config is read the way ``ssh`` reads it for what the inventory leaves unset (User,
Port; at connect time HostName, ProxyJump, IdentityFile): :func:`ssh_config`.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

import paramiko

#: the most nodes one inventory may list (a typo like ``n[1-1000000]`` stops here)
MAX_NODES = 10_000

_GROUP = re.compile(r"\[([^\[\]]*)\]")
_PART = re.compile(r"(\d+)(?:-(\d+))?")


class RangeError(ValueError):
    """A host range that cannot be expanded; the message says why."""


def _numbers(inner: str) -> list[str]:
    """``001-003,7`` -> ``["001", "002", "003", "7"]``: the padding of each part's first
    number kept."""
    numbers: list[str] = []
    for part in inner.split(","):
        match = _PART.fullmatch(part.strip())
        if not match:
            raise RangeError(f"[{inner}]: expected numbers and ranges like [01-16] or [1-3,7]")
        first, last = match.group(1), match.group(2) or match.group(1)
        if int(last) < int(first):
            raise RangeError(f"[{inner}]: {first}-{last} ends before it begins")
        if int(last) - int(first) >= MAX_NODES:
            raise RangeError(f"[{inner}]: more than {MAX_NODES} hosts")
        width = len(first) if first.startswith("0") else 0
        numbers.extend(str(v).zfill(width) for v in range(int(first), int(last) + 1))
    return numbers


def is_range(text: str) -> bool:
    """Whether ``text`` writes a range (a bracketed IPv6 address does not)."""
    return ("[" in text or "]" in text) and not any(":" in g for g in _GROUP.findall(text))


def expand(pattern: str) -> list[str]:
    """The hosts (or ids) ``pattern`` writes, in order; RangeError when it is no range."""
    pieces = _GROUP.split(pattern)  # text, numbers, text, numbers, ..., text
    texts, groups = pieces[0::2], [_numbers(inner) for inner in pieces[1::2]]
    if any("[" in t or "]" in t for t in texts):
        raise RangeError(f"{pattern!r}: unbalanced or nested brackets")
    count = 1
    for group in groups:
        count *= len(group)
    if count > MAX_NODES:
        raise RangeError(f"{pattern!r} writes {count} hosts: at most {MAX_NODES}")
    return [
        texts[0] + "".join(n + t for n, t in zip(chosen, texts[1:]))
        for chosen in itertools.product(*groups)
    ]


def derived_id(host: str) -> str:
    """A node's id when the inventory gives none: a host name's first label
    (``edge001.example.com`` -> ``edge001``), an IPv4 address as written, an IPv6 address
    with ``-`` for ``:``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.split(".", 1)[0]
    if address.version == 4:
        return str(address)
    text = str(address).replace(":", "-")
    return text if text[0].isalnum() else "0" + text


def hostfile(text: str) -> list[str]:
    """The hosts of a hostfile: a host a line; blank lines and ``#`` comments left out."""
    return [
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    ]


class SshConfigError(ValueError):
    """The ssh config cannot be read; the message says why."""


@lru_cache(maxsize=8)
def _parsed(path: str, stamp: tuple[float, int]) -> paramiko.SSHConfig:
    try:
        return paramiko.SSHConfig.from_path(path)
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as exc:
        raise SshConfigError(f"{path}: cannot read the ssh config: {exc}") from None


def ssh_config(path: Optional[Path]) -> paramiko.SSHConfig:
    """The ssh config at ``path`` (an empty one when ``path`` is None or absent), read
    once while the file is unchanged. Only this file: not /etc/ssh/ssh_config."""
    if path is None:
        return paramiko.SSHConfig()
    try:
        status = path.stat()
    except FileNotFoundError:
        return paramiko.SSHConfig()
    except OSError as exc:
        raise SshConfigError(f"{path}: cannot read the ssh config: {exc}") from None
    return _parsed(str(path), (status.st_mtime, status.st_size))


def ssh_settings(config: paramiko.SSHConfig, host: str) -> dict[str, str]:
    """What the ssh config says of ``host``: ``user`` and ``port`` when it says them."""
    if not config._config:  # noqa: SLF001 - nothing to look up (no file, or an empty one)
        return {}
    try:
        found = config.lookup(host)
    except (KeyError, OSError):  # our own user name unknown (for %u): nothing said
        return {}
    return {key: str(found[key]) for key in ("user", "port") if key in found}
