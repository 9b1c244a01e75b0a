"""The keys of a node and of ``ssh:`` in the inventory, each declared once (with the
settings' :class:`~controller.run.settings.Setting`: unit, default, limits, help): the
inventory's checks and its JSON Schema (controller/run/schema.py) are derived from them.
A node key that is not a setting already may also be set once under ``defaults:``
(NODE_DEFAULTS), for every node; a node's own value wins.
"""

from __future__ import annotations

from typing import Any

from . import checks
from . import settings as declared
from .checks import Check

S = declared.Setting
#: the ``ssh:`` keys
SSH_KEYS: tuple[declared.Setting, ...] = (
    S(
        "known_hosts",
        "text",
        "~/.ssh/known_hosts",
        "host keys are checked against this file (null: only with strict_host_keys false)",
        null=True,
    ),
    S("strict_host_keys", "bool", True, "false: accept unknown host keys with a warning"),
    S("forward_agent", "bool", False, "forward the SSH agent to the nodes"),
    S(
        "ssh_config_keys",
        "bool",
        False,
        "also offer the ssh config's IdentityFile keys next to a node's key",
    ),
    S(
        "config",
        "text",
        "~/.ssh/config",
        "the ssh config whose User, Port, HostName,"
        " ProxyJump and IdentityFile count for what the inventory leaves unset (null: none)",
        null=True,
    ),
)
#: a node's keys; those not in ``defaults:`` already may be set there too (NODE_DEFAULTS)
NODE_KEYS: tuple[declared.Setting, ...] = (
    S("id", "text", None, "unique node id, the {node} path segment (default: from the host:"
      " its first label, or the address); with a host range, a range of as many ids"),
    S("host", "text", None, "address or host name (no user@ or :port); a range like"
      " edge[001-100] or rack[1-2]-n[01-08] is one node per host"),
    S("port", "count", 22, "SSH port (default: the ssh config's Port, else 22)", 1, 65535),
    S("user", "text", None, "SSH user (default: the ssh config's User, else yours)"),
    S("key", "text", None, "private key on the controller (default: the ssh config's"
      " IdentityFile, the agent, ~/.ssh/id_*)"),
    S("workdir", "path", None, "the node's folder for parbench (default /tmp/parbench-<user>)"),
    declared.BY_NAME["python"],
    declared.BY_NAME["clients"],
    declared.BY_NAME["proxy"],
    S("alluxio_home", "path", None, "the node's Alluxio installation", null=True),
    declared.BY_NAME["posix_root"],
)  # fmt: skip
del S
#: node keys that ``defaults:`` sets for every node, next to the settings
NODE_DEFAULTS = tuple(
    s.name for s in NODE_KEYS if s.name not in ("id", "host") and s.name not in declared.BY_NAME
)


def node_defaults(check: Check, raw: dict) -> dict[str, Any]:
    """The node keys ``defaults:`` sets for every node (NODE_DEFAULTS), checked once."""
    given = {k: v for k, v in raw.items() if k in NODE_DEFAULTS and v is not None}
    found: dict[str, Any] = {}
    if "port" in given:
        found["port"] = check.integer("defaults.port", given["port"], 1, 65535)
    if "user" in given:
        found["user"] = checks.user(check, "defaults.user", given["user"])
    if "key" in given:
        found["key"] = check.local_path("defaults.key", given["key"])
    for key in ("workdir", "alluxio_home"):
        if key in given:
            found[key] = check.remote_path(f"defaults.{key}", given[key])
    return found
