"""The phase request: what a node is asked to do in one phase.

The controller sends each node one :class:`PhaseRequest` as JSON (``python -m worker run
FILE``); the by-hand CLI (``python -m worker write --src ... --dst ...``) builds the same
object from its options. A request is versioned (``schema``) and checked field by field
when loaded: a bad one is refused with the field's path named, never half-run. Both make
it through :func:`worker.protocol.build.phase_request`. Adding a setting is adding a field
here (with a default) and its keyword there (an inventory setting keeps its name and
default, declared in controller/run/settings.py); encoding and type checks follow from the
field's annotation. Part of the contract (worker/protocol/). Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

from .phases import (
    BY_PHASE,
    COPY_PHASES,
    IO_PHASES,
    PHASES,
    RECORDED_PHASES,
    REFERENCE_PHASES,
    TIMED_PHASES,
)
from .typed import (
    RequestError,
    _absolute,
    _choice,
    _Message,
    _parse,
    _pattern,
    _refuse,
    decode,
)

REQUEST_SCHEMA = "parbench.request/1"

#: the metadata phase's kinds of operation, in the order each client does them
META_OPS = ("create", "stat", "list", "delete")

BACKENDS = ("alluxio", "posix", "s3", "native")
#: how the s3 backend addresses a bucket: in the path (Alluxio's S3 API needs it), as a
#: host name, or as botocore decides
S3_ADDRESSING = ("path", "virtual", "auto")
#: S3's smallest part of a multipart upload (but the last) and its most parts in one: the
#: s3 backend's parts are chunk_size but at least the smallest, so a file may be at most
#: S3_MAX_PARTS of them (the controller checks it before a run)
S3_MIN_PART = 5 * 1024**2
S3_MAX_PARTS = 10_000
#: backends whose write and read are run by a tool of the storage's own (worker/native.py:
#: Alluxio's StressClientIOBench), one record per node instead of one per client
NATIVE_BACKENDS = ("native",)
WRITE_TYPES = ("CACHE_THROUGH", "MUST_CACHE", "THROUGH", "ASYNC_THROUGH")
READ_TYPES = ("CACHE", "CACHE_PROMOTE", "NO_CACHE")
ON_EXISTING = ("replace", "refuse")
#: when the clients start once all are ready: at once, at ``start_at``, or when the
#: controller says so on stdin (the handshake below)
START_MODES = ("now", "at", "stdin")

#: a node id: one plain path segment (the inventory accepts the same)
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: a run id: one folder name
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class StorageConfig:
    """Where and how the clients reach storage (picklable: each client builds its own)."""

    backend: str = "alluxio"
    host: str = "localhost"  # alluxio: the REST proxy as this node sees it
    port: int = 39999
    root: Optional[str] = None  # posix: storage path /a/b is the file ROOT/a/b
    write_type: str = "CACHE_THROUGH"
    read_type: str = "CACHE"
    timeout: float = 600.0  # seconds one storage request may take
    # s3: the endpoint URL, how buckets are addressed, the region, the profile and access
    # key on the node (its secret stays there: never in a request), bytes per upload part
    endpoint: Optional[str] = None
    addressing: str = "path"
    region: str = "us-east-1"
    profile: Optional[str] = None
    access_key: Optional[str] = None
    part_size: int = 5 * 1024**2
    alluxio_home: Optional[str] = None  # native: the node's Alluxio install (bin/alluxio)

    def check(self, where: str) -> None:
        _choice(f"{where}.backend", self.backend, BACKENDS)
        _choice(f"{where}.addressing", self.addressing, S3_ADDRESSING)
        if self.backend == "s3" and not (self.endpoint or "").startswith(("http://", "https://")):
            _refuse(
                f"{where}.endpoint", "an http:// or https:// URL for the s3 backend", self.endpoint
            )
        if self.part_size < 1:
            _refuse(f"{where}.part_size", "a positive number of bytes", self.part_size)
        _choice(f"{where}.write_type", self.write_type, WRITE_TYPES)
        _choice(f"{where}.read_type", self.read_type, READ_TYPES)
        if not 0 < self.port < 65536:
            _refuse(f"{where}.port", "a port 1..65535", self.port)
        if not self.timeout > 0:
            _refuse(f"{where}.timeout", "a positive number of seconds", self.timeout)
        if self.root is not None:
            _absolute(f"{where}.root", self.root, allow_root=True)
        elif self.backend == "posix":
            _refuse(f"{where}.root", "a directory for the posix backend", None)
        if self.backend in NATIVE_BACKENDS:
            _absolute(f"{where}.alluxio_home", self.alluxio_home)


@dataclass(frozen=True)
class Reference:
    """The reference file on the node, and what the run sealed it as."""

    path: str
    bytes: Optional[int] = None  # None: not known (by hand), checked only by content
    sha256: Optional[str] = None


#: shortest interval of the throughput series, seconds
MIN_INTERVAL = 0.1


@dataclass(frozen=True)
class Measure:
    """What a timed client records besides its totals (worker/meter.py)."""

    latency: bool = True  # a latency histogram per operation
    interval: float = 1.0  # seconds per point of the bytes-moved series; 0: no series

    def check(self, where: str) -> None:
        if self.interval != 0 and not MIN_INTERVAL <= self.interval <= 3600:
            _refuse(f"{where}.interval", f"0 (off) or {MIN_INTERVAL}..3600 seconds", self.interval)


def nth_path(path: str, k: int) -> str:
    """The ``k``-th file of a client's sequence (a phase with a duration moves one file
    after another): ``path`` itself, then ``path.1``, ``path.2``, ..."""
    return path if k == 0 else f"{path}.{k}"


def meta_folder(root: str, node: str, client: int) -> str:
    """The directory of client ``client`` of ``node`` in the metadata phase:
    ``{root}/{node}/{client}.meta`` (``{root}/{node}/{client}`` is the client's file)."""
    return posixpath.join(root, node, f"{client}.meta")


#: the names :func:`nth_path` gives below a client's ``NAME``: ``NAME`` and ``NAME.<k>``
def is_nth_of(name: str, base: str) -> bool:
    return name == base or (
        name.startswith(base + ".")
        and name[len(base) + 1 :].isdigit()
        and name[len(base) + 1] != "0"
    )


@dataclass(frozen=True)
class MetaWork:
    """The metadata phase: each client creates, stats, lists and deletes ``files``
    files of ``size`` bytes in its own directory."""

    files: int = 100
    size: int = 0

    def check(self, where: str) -> None:
        if not 1 <= self.files <= 1_000_000:
            _refuse(f"{where}.files", "1..1000000 files", self.files)
        if not 0 <= self.size <= 1 << 30:
            _refuse(f"{where}.size", "0..1GiB bytes", self.size)


@dataclass(frozen=True)
class WorkdirClean:
    """What ``fab clean --data --runs`` also removes in the node's workdir
    (worker/clean.py): the reference data ``worker generate`` made in ``data/``, and the
    run folders ``runs/<run>`` but those in ``keep`` (runs the controller holds locks
    for) and the one whose run holds the workdir's lock."""

    workdir: str
    data: bool = False
    runs: bool = False
    keep: Tuple[str, ...] = ()

    def check(self, where: str) -> None:
        _absolute(f"{where}.workdir", self.workdir)
        for index, run_id in enumerate(self.keep):
            _pattern(f"{where}.keep[{index}]", run_id, RUN_ID)


@dataclass(frozen=True)
class ClientTask:
    """One client: the storage path it writes, reads or checks, and its local file."""

    client: int
    path: str
    local_path: Optional[str] = None  # read: where its copy goes; verify-read: copy checked
    files: int = 1  # read, verify: how many files of the sequence (nth_path) there are
    #: verify: the tag the run recorded for each of its files (results.made), "" for
    #: one the run did not complete; empty: not known (by hand, an older run): content only
    expect: Tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseRequest(_Message):
    """Everything one node needs to run one phase; times are on the node's clock."""

    run_id: str
    node: str
    phase: str
    storage: StorageConfig
    clients: Tuple[ClientTask, ...]
    dst: Optional[str] = None  # the run's storage root: client c writes {dst}/{node}/{c}
    local_dst: Optional[str] = None  # where read copies go: {local_dst}/{c}
    reference: Optional[Reference] = None  # write, verify
    chunk_size: int = 1024 * 1024
    on_existing: str = "replace"
    start: str = "now"
    start_at: Optional[float] = None  # start "at": epoch seconds
    deadline: Optional[float] = None  # clients still running then are stopped
    controlled: bool = False  # the controller holds stdin: "stop", or its end, stops all
    out: Optional[str] = None  # the records file (JSON lines)
    measure: Measure = Measure()
    duration: Optional[float] = None  # write, read: files one after another until then
    meta: Optional[MetaWork] = None  # the metadata phase's work
    iteration: int = 0  # of a phase run several times: 0, 1, ...
    warmup: bool = False  # a warm-up iteration: reported apart, never in the statistics
    workdir_clean: Optional[WorkdirClean] = None  # clean: generated data, old run folders
    schema: str = REQUEST_SCHEMA

    def check(self) -> PhaseRequest:
        """Refuse a request that is inconsistent; return it when it is fine."""
        if self.schema != REQUEST_SCHEMA:
            _refuse("request.schema", repr(REQUEST_SCHEMA), self.schema)
        _choice("request.phase", self.phase, PHASES)
        _pattern("request.node", self.node, NODE_ID)
        _pattern("request.run_id", self.run_id, RUN_ID)
        self.storage.check("request.storage")
        self.measure.check("request.measure")
        if self.iteration < 0:
            _refuse("request.iteration", "0 or more", self.iteration)
        if self.duration is not None and not (self.phase in IO_PHASES and self.duration > 0):
            _refuse(
                "request.duration", "a positive number of seconds, for write or read", self.duration
            )
        if (self.phase == "meta") != (self.meta is not None):
            _refuse("request.meta", "the work of a meta phase, exactly there", self.meta)
        if self.meta is not None:
            self.meta.check("request.meta")
        if self.workdir_clean is not None:
            if self.phase != "clean":
                given = asdict(self.workdir_clean)
                _refuse("request.workdir_clean", "none but in a clean", given)
            self.workdir_clean.check("request.workdir_clean")
        if BY_PHASE[self.phase].at_dst or self.native:  # native: its files are at dst too
            _absolute("request.dst", self.dst)
        if not self.clients:
            _refuse("request.clients", "at least one client", "none")
        for index, task in enumerate(self.clients):
            where = f"request.clients[{index}]"
            if task.client != index:
                _refuse(f"{where}.client", f"{index} (clients in order from 0)", task.client)
            _absolute(f"{where}.path", task.path)
            if task.files < 1:
                _refuse(f"{where}.files", "1 or more", task.files)
            if task.expect and len(task.expect) != task.files:
                wanted = f"none or a tag per file ({task.files})"
                _refuse(f"{where}.expect", wanted, len(task.expect))
            if self.phase in COPY_PHASES:
                _absolute(f"{where}.local_path", task.local_path)
        if self.phase in REFERENCE_PHASES and self.reference is None:
            _refuse("request.reference", f"the reference file for {self.phase}", None)
        if BY_PHASE[self.phase].local_dst:
            _absolute("request.local_dst", self.local_dst)
        if not self.chunk_size > 0:
            _refuse("request.chunk_size", "a positive number of bytes", self.chunk_size)
        _choice("request.on_existing", self.on_existing, ON_EXISTING)
        _choice("request.start", self.start, START_MODES)
        if (self.start == "at") != (self.start_at is not None):
            _refuse("request.start_at", "a time exactly when start is 'at'", self.start_at)
        if self.phase in RECORDED_PHASES and not self.out:
            _refuse("request.out", "a records file", self.out)
        return self

    @property
    def native(self) -> bool:
        """Its write or read is run by StressClientIOBench (worker/native.py)."""
        return self.storage.backend in NATIVE_BACKENDS and self.phase in IO_PHASES

    @property
    def records(self) -> int:
        """How many records the node leaves: one per client, one per node when native."""
        return 1 if self.native else len(self.clients)

    @property
    def timed(self) -> bool:
        return self.phase in TIMED_PHASES

    @classmethod
    def from_json(cls, text: str) -> PhaseRequest:
        data = _parse(text, "request")
        if not isinstance(data, dict) or data.get("schema") != REQUEST_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else data
            _refuse("request.schema", repr(REQUEST_SCHEMA), found)
        return decode(cls, data, "request").check()


def save_request(path: str, text: str) -> None:
    """Keep the request the controller sent inline at ``path`` (its folder made private
    when new), where the node's later commands and a person find it."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise RequestError(f"{path}: cannot save the request: {exc.strerror or exc}") from None


def load_request(path: str) -> PhaseRequest:
    """The request in the file ``path``; RequestError naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise RequestError(f"{path}: cannot read the request: {exc.strerror or exc}") from None
    try:
        return PhaseRequest.from_json(text)
    except RequestError as exc:
        raise RequestError(f"{path}: {exc}") from None
