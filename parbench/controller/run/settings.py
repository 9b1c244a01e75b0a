"""The run-wide settings (``defaults:`` in the inventory), each declared ONCE here: its
name, unit, default (as an inventory file writes it), limits or choices, whether it goes
to the nodes in each request and whether it is part of a phase's config, and its help.

Derived from the table: the keys ``defaults:`` accepts (and its "unknown key" list),
each key's check and error message (:meth:`Setting.check`, by unit, unless a setting has
a rule of its own), the defaults (an absent key; a setting a run sealed before it
existed, controller/run/seal.py), the settings each request carries to the nodes
(:func:`request_settings` -> ``worker.protocol.phase_request``) and the help text
(:meth:`Setting.describe`, :func:`help_text`).

Adding a setting: one :class:`Setting` below, a typed field of the same name in
``inventory.Settings`` (kept written out so that a type checker and a reader see each
setting's type; a unit test checks its name, its order and that the checked default and
null fit its type), and the code that uses it; a request setting also needs its keyword
in ``worker.protocol.phase_request`` (a unit test checks the two defaults agree).
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from parbench.worker.protocol import (
    BACKENDS,
    DURATION_LIKE,
    MIN_INTERVAL,
    ON_EXISTING,
    PHASES,
    READ_TYPES,
    S3_ADDRESSING,
    WRITE_TYPES,
    UnitError,
    parse_duration,
)

from . import checks
from .checks import MAX_CLIENTS, MAX_START_DELAY, MAX_TIMEOUT, Check
from .iterations import MAX_ITERATIONS, MAX_WARMUP, seconds_of

Rule = Callable[[Check, str, Any], Any]

#: what a setting's value is, and how it is checked when it has no rule of its own
UNITS = ("count", "bytes", "seconds", "ratio", "choice", "bool", "path", "text", "data", "address")


@dataclass(frozen=True)
class Proxy:
    """Alluxio REST proxy address as seen from the nodes."""

    host: str
    port: int


def proxy(check: Check, where: str, value: Any, base: Proxy) -> Proxy:
    """A ``{host, port}`` mapping; missing fields come from ``base``."""
    value = check.mapping(where, value, ("host", "port"))
    at = checks.join(where, "host")
    host = checks.not_an_option(
        check, at, check.string(at, value.get("host", base.host), checks.TOKEN)
    )
    if ":" in host:  # the worker's URL is http://{host}:{port}: no room for IPv6 there
        ipv6 = " (an IPv6 address is not supported for the proxy: use a host name)"
        check.fail(
            at,
            f"{host!r} includes a port; set it as {checks.join(where, 'port')}"
            + (ipv6 if checks.is_ipv6(host) else ""),
        )
    return Proxy(
        host=host,
        port=check.integer(checks.join(where, "port"), value.get("port", base.port), 1, 65535),
    )


DEFAULT_PROXY = Proxy("127.0.0.1", 39999)


@dataclass(frozen=True)
class Setting:
    """One ``defaults:`` key."""

    name: str
    unit: str  # one of UNITS
    default: Any  # as written in YAML
    help: str
    low: float = 0  # count, bytes, seconds: the limits, both included
    high: float = 0
    choices: tuple[str, ...] = ()  # choice
    null: bool = False  # null is a value (off, not set, worked out)
    relative: bool = False  # path: relative to the node's workdir allowed
    rule: Optional[Rule] = None  # the check, when the unit's is not the whole story
    #: the ``worker.protocol.phase_request`` keyword it is sent to the nodes as ("": not sent)
    request: str = ""
    #: part of a phase's config, whose hash says two runs measured the same thing
    #: (controller/analysis/validity.py)
    config: bool = False
    #: the phases whose config it is part of, when not every phase's
    phases: tuple[str, ...] = ()
    shown: str = ""  # what it may be, for people, when the unit does not say it all
    #: a flag of the tasks (controller/run/flags.py): "run", set on the tasks that start
    #: a run and sealed in it; "phase", also on the tasks of a timed phase (write, read),
    #: for that phase of this command ("": none)
    flag: str = ""

    def check(self, check: Check, where: str, value: Any) -> Any:
        """The value checked and converted; InventoryError naming ``where`` otherwise."""
        if self.unit == "seconds" and isinstance(value, str):
            # every time key, its own rule or not, reads 90, 90s, 1m30s, 2h, 1d, 250ms
            # a word of its own (start_delay: auto) stays; anything else is refused below
            with suppress(UnitError):
                value = parse_duration(value)
        if self.rule is not None:
            return self.rule(check, where, value)
        if value is None and self.null:
            return None
        if self.unit == "count":
            return check.integer(where, value, int(self.low), int(self.high))
        if self.unit == "bytes":
            return check.size(where, value, int(self.low), int(self.high))
        if self.unit == "seconds":
            return check.seconds(where, value, self.low, self.high)
        if self.unit == "choice":
            return check.choice(where, value, self.choices)
        if self.unit == "bool":
            return check.boolean(where, value)
        if self.unit == "path":
            return check.remote_path(where, value, relative=self.relative)
        if self.unit == "text":
            return check.string(where, value)
        raise AssertionError(f"defaults.{self.name}: unit {self.unit} needs a rule")

    @property
    def values(self) -> str:
        """What the setting may be, for people."""
        if self.shown:
            return self.shown
        if self.unit == "choice":
            text = " | ".join(self.choices)
        elif self.unit in ("count", "seconds"):
            text = f"{_number(self.low)} to {_number(self.high)}"
            text += " s" if self.unit == "seconds" else ""
        elif self.unit == "bytes":
            text = f"{checks.in_units(int(self.low))} to {checks.in_units(int(self.high))}"
        elif self.unit == "bool":
            text = "true | false"
        else:
            text = {"path": "a POSIX path", "text": "a string"}.get(self.unit, self.unit)
        return f"null | {text}" if self.null and self.rule is None else text

    @property
    def written(self) -> str:
        """The default as an inventory file writes it (YAML)."""
        value = self.default
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
        if value is None:
            return "null"
        return str(value).lower() if isinstance(value, bool) else str(value)

    def describe(self) -> str:
        """One line: ``name: default  (values) help``."""
        return f"{self.name}: {self.written}  ({self.values}) {self.help}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- the rules of the settings a unit does not say all of ---------------------------------


def _data(check: Check, where: str, value: Any) -> Any:
    """A size (``1GiB``, or bytes) of data generated on every node, else the path of the
    reference file on the controller."""
    return checks.data(check, where, value)


def _duration(check: Check, where: str, value: Any) -> Optional[float]:
    """Null, seconds, or a time like ``60s``, ``2m``, ``1h``."""
    if value is None:
        return None
    try:
        return seconds_of(value)
    except ValueError as exc:
        check.fail(where, str(exc))


def _start_delay(check: Check, where: str, value: Any) -> Optional[float]:
    """``auto`` (None: the start gate works it out, startgate.py) or seconds."""
    if value == "auto":
        return None
    low, high = START_DELAY.low, START_DELAY.high
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not low <= value <= high:  # also false for nan
        what = f"auto or a duration between {low:g} and {high:g} s ({DURATION_LIKE})"
        check.expect(where, what, value)
    return float(value)


def _interval(check: Check, where: str, value: Any) -> float:
    """0 (no series) or MIN_INTERVAL..3600 seconds."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value == 0 or MIN_INTERVAL <= value <= 3600):
        span = f"0 (no series) or a duration between {MIN_INTERVAL:g} and 3600 s"
        check.expect(where, span, value)
    return float(value)


def _coefficient(check: Check, where: str, value: Any) -> Optional[float]:
    """Null, or a coefficient of variation between 0 and 1 (0.05: 5 %)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and (not number or not 0 < value < 1):
        what = "null or a coefficient of variation between 0 and 1 (0.05 is 5 %)"
        check.expect(where, what, value)
    return None if value is None else float(value)


def _run_root(check: Check, where: str, value: Any) -> str:
    """One storage root for the whole run, so no ``{...}`` (nothing expands it)."""
    path = check.remote_path(where, value)
    if "{" in path or "}" in path:
        check.expect(
            where,
            "a path without '{' or '}' (dst is one root for the whole run; templates are not"
            " expanded there)",
            value,
        )
    return path


#: an endpoint URL: a scheme, a host (a name, IPv4, or IPv6 in brackets), an optional port
#: and path; no user, query or fragment (the URL is printed, so it must hold no secret)
_ENDPOINT = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?(/[^\s?#@]*)?")


def _endpoint(check: Check, where: str, value: Any) -> Optional[str]:
    """Null (the proxy's S3 API: ``http://{proxy}/api/v1/s3``) or an http(s) URL."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ENDPOINT.fullmatch(value):
        what = "null or an http:// or https:// URL without user, query or fragment"
        check.expect(where, what, value)
    return str(value).rstrip("/")


START_DELAY = Setting(
    "start_delay", "seconds", "auto", "the common start comes this long after the last node"
    " is ready: auto (from the nodes' round trips) or seconds", 0.01, 3600.0, rule=_start_delay,
    shown="auto | 0.01 to 3600 s",
)  # fmt: skip
assert START_DELAY.high == MAX_START_DELAY

#: the phases of files (all but meta): what data and chunk_size count for
FILE_PHASES = tuple(p for p in PHASES if p != "meta")
S = Setting
#: every ``defaults:`` key, in the order of ``inventory.Settings``
SETTINGS: tuple[Setting, ...] = (
    S("clients", "count", 2, "client processes per node", 1, MAX_CLIENTS, config=True, flag="run"),
    S("backend", "choice", "alluxio", "alluxio (REST proxy), posix (files under posix_root),"
      " s3 (the S3 API at s3_endpoint) or native (Alluxio's StressClientIOBench on nodes with"
      " alluxio_home)", choices=BACKENDS, config=True, flag="run"),
    S("dst", "path", "/parbench", "storage root of the run: {dst}/{node}/{client}; no { }",
      rule=_run_root),
    S("local_dst", "path", "read", "where read copies go on a node (relative: under its"
      " workdir)", relative=True),
    S("data", "data", "data/5mb.txt", "reference file on the controller, or a size generated"
      " on every node", rule=_data, config=True, phases=FILE_PHASES, flag="run",
      shown="a file, or a size like 1GiB"),
    S("proxy", "address", {"host": DEFAULT_PROXY.host, "port": DEFAULT_PROXY.port},
      "{host, port} of the Alluxio REST proxy as the nodes see it",
      rule=lambda c, w, v: proxy(c, w, v, DEFAULT_PROXY), shown="{host, port}"),
    S("posix_root", "path", None, "posix: the mount of the storage on every node", null=True),
    S("s3_endpoint", "text", None, "s3: the S3 API's URL; null: the proxy's,"
      " http://{proxy}/api/v1/s3", null=True, rule=_endpoint, shown="null | an http(s) URL"),
    S("s3_addressing", "choice", "path", "s3: a bucket in the URL's path (Alluxio needs it),"
      " in its host name (virtual), or as botocore picks (auto)", choices=S3_ADDRESSING),
    S("s3_region", "text", "us-east-1", "s3: the region requests are signed for"),
    S("s3_profile", "text", None, "s3: the AWS profile on the nodes whose credentials sign"
      " requests; null: the nodes' default chain", null=True),
    S("s3_access_key", "text", None, "s3: the access key id (on Alluxio: the user); its"
      " secret is never in the inventory: it comes from the node", null=True),
    S("write_type", "choice", "CACHE_THROUGH", "Alluxio write type", choices=WRITE_TYPES,
      config=True, phases=("write",), flag="run"),
    S("read_type", "choice", "CACHE", "Alluxio read type", choices=READ_TYPES, config=True,
      phases=("read",), flag="run"),
    S("chunk_size", "bytes", "1MiB", "bytes per request", checks.MIN_CHUNK_SIZE,
      checks.MAX_CHUNK_SIZE, request="chunk_size", config=True, phases=FILE_PHASES,
      flag="run"),
    S("on_existing", "choice", "replace", "a file an earlier run left: replace or refuse",
      choices=ON_EXISTING, request="on_existing", flag="run"),
    START_DELAY,
    S("ready_timeout", "seconds", 120, "seconds the ready nodes wait for one that is not",
      1, MAX_TIMEOUT),
    S("connect_timeout", "seconds", 15, "seconds to open an SSH connection", 1, MAX_TIMEOUT),
    S("phase_timeout", "seconds", 1800, "seconds a phase may take on a node", 1, MAX_TIMEOUT),
    S("python", "text", "python3", "interpreter on the nodes that makes the worker's venv"),
    S("latency", "bool", True, "per-operation latency histograms", request="latency",
      config=True),
    S("series_interval", "seconds", 1, "seconds per point of throughput over time; 0: none",
      0, 3600, rule=_interval, request="series_interval", shown=f"0 | {MIN_INTERVAL:g} to 3600 s"),
    S("iterations", "count", 1, "measured iterations of a timed phase", 1, MAX_ITERATIONS,
      config=True, flag="phase"),
    S("warmup", "count", 0, "iterations before them, not in the statistics", 0, MAX_WARMUP,
      config=True, flag="phase"),
    S("until_stable", "ratio", None, "repeat until the last stable_window agree within this"
      " coefficient of variation (0.05: 5 %)", null=True, rule=_coefficient, config=True,
      shown="null | above 0, below 1", flag="phase"),
    S("stable_window", "count", 3, "iterations until_stable compares", 2, MAX_ITERATIONS,
      config=True),
    S("max_iterations", "count", 10, "most iterations until_stable runs", 2, MAX_ITERATIONS,
      config=True),
    S("duration", "seconds", None, "write, read: files one after another this long (60s, 2m)",
      null=True, rule=_duration, config=True, shown="null | seconds, or like 60s, 2m, 1h",
      flag="phase"),
    S("meta_files", "count", 100, "fab meta: files each client creates, stats, lists, deletes",
      1, 1_000_000, request="meta_files", config=True, phases=("meta",), flag="run"),
    S("meta_size", "bytes", 0, "... of this many bytes each", 0, 1024**3, request="meta_size",
      config=True, phases=("meta",), flag="run"),
    S("max_start_skew", "seconds", 0.1, "a larger start skew makes a phase invalid", 0.001,
      MAX_START_DELAY),
    S("min_phase_seconds", "seconds", 0, "an iteration shorter than this is invalid; 0: any",
      0, MAX_TIMEOUT),
    S("short_phase_seconds", "seconds", 5, "a phase shorter than this is marked short and"
      " warned about (its throughput is mostly start and end); 0: never", 0, MAX_TIMEOUT),
    S("fanout", "count", 64, "nodes pushed, locked or cleaned at once", 1, 100_000),
    S("request_timeout", "seconds", None, "seconds one storage request may take before its"
      " client fails (null: 0.9 x phase_timeout)", 1, MAX_TIMEOUT, null=True),
)  # fmt: skip
del S

#: name -> its declaration
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def check_all(check: Check, raw: dict) -> dict[str, Any]:
    """Every setting checked: the value ``raw`` gives, else its default."""
    return {
        s.name: s.check(check, f"defaults.{s.name}", raw.get(s.name, s.default)) for s in SETTINGS
    }


def default_of(name: str) -> Any:
    """The checked default of setting ``name`` (a run sealed before it existed has it)."""
    setting = BY_NAME[name]
    return setting.check(Check("defaults", Path(".")), f"defaults.{name}", setting.default)


def request_settings(settings: Any) -> dict[str, Any]:
    """The settings each request carries, as ``worker.protocol.phase_request`` keywords."""
    return {s.request: getattr(settings, s.name) for s in SETTINGS if s.request}


def help_text() -> str:
    """Every setting, a line each."""
    return "\n".join(s.describe() for s in SETTINGS)
