"""THE contract between the controller and the worker: what a node is asked to do, the
worker's exit codes, the probe's facts, and every line on the node's session (below).

The controller sends each node one :class:`PhaseRequest` as JSON (``python -m worker run
FILE``); the by-hand CLI (``python -m worker write --src ... --dst ...``) builds the same
object from its options. A request is versioned (``schema``) and checked field by field
when loaded: a bad one is refused with the field's path named, never half-run. Both make
it through :func:`phase_request`. Adding a setting is adding a field here (with a
default) and its keyword there (an inventory setting keeps its name and default, declared
in controller/run/settings.py); encoding and type checks follow from the field's
annotation. Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import posixpath
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from enum import IntEnum
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, get_type_hints

from worker.layout import MARKER
from worker.results import ClientResult

REQUEST_SCHEMA = "parbench.request/1"

#: the metadata phase's kinds of operation, in the order each client does them
META_OPS = ("create", "stat", "list", "delete")

BACKENDS = ("alluxio", "posix")
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
class Phase:
    """One phase a request may ask, and what follows from its kind. Every list of phases,
    here and in the controller, is derived from :data:`PHASE_TABLE`."""

    name: str
    #: clients start together behind the barrier and their work is timed; the controller
    #: summarises, exports, compares and keeps in the history the figures of these
    timed: bool = False
    moves_data: bool = False  # moves file data (a ``duration`` may be given)
    reference: bool = False  # the request carries the reference file
    copies: bool = False  # each client has a local copy (read makes it, verify-read checks it)
    at_dst: bool = False  # the clients' storage paths are under ``dst``
    local_dst: bool = False  # the request names the node's folder of copies
    recorded: bool = True  # each client leaves a record
    verifies: str = ""  # the phase whose files it checks
    headline_op: str = ""  # the operation whose p99 latency stands for a timed phase


#: THE phases, in the order a run has them
PHASE_TABLE: Tuple[Phase, ...] = (
    Phase("write", timed=True, moves_data=True, reference=True, at_dst=True, headline_op="file"),
    Phase("read", timed=True, moves_data=True, copies=True, local_dst=True, headline_op="file"),
    Phase("verify-write", reference=True, at_dst=True, verifies="write"),
    Phase("verify-read", reference=True, copies=True, verifies="read"),
    Phase("meta", timed=True, at_dst=True, headline_op="create"),
    Phase("clean", at_dst=True, local_dst=True, recorded=False),
)
#: name -> its phase
BY_PHASE: Dict[str, Phase] = {p.name: p for p in PHASE_TABLE}


def _phases(**kind: Any) -> Tuple[str, ...]:
    """The names of the phases whose fields have these values, in the table's order."""
    return tuple(p.name for p in PHASE_TABLE if all(getattr(p, k) == v for k, v in kind.items()))


#: what a request may ask; all but clean leave one record per client
PHASES = _phases()
RECORDED_PHASES = _phases(recorded=True)
#: phases whose clients start together behind the barrier and whose work is timed
TIMED_PHASES = _phases(timed=True)
#: phases that move file data
IO_PHASES = _phases(moves_data=True)
#: phases that check the files of another: verify phase -> the phase it checks
VERIFIED: Dict[str, str] = {p.name: p.verifies for p in PHASE_TABLE if p.verifies}
VERIFY_PHASES = tuple(VERIFIED)
#: the phases a request carries the reference file for; and those with local copies
REFERENCE_PHASES = _phases(reference=True)
COPY_PHASES = _phases(copies=True)


class ExitCode(IntEnum):
    """How ``python -m worker`` ends."""

    OK = 0  # every record ok (clean: everything removed)
    NOT_OK = 1  # records saved, some not ok (clean: something not removed)
    USAGE = 2  # bad options or a bad request: nothing ran
    NOT_SAVED = 3  # the records could not be saved
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


#: exit codes after which the node's records file is complete and worth fetching
RECORDED_EXITS = (ExitCode.OK, ExitCode.NOT_OK)


# --- the probe (worker/probe.py runs as `python -c` before this package is on the node,
# so it cannot import this module: it keeps its own copies of these, checked by a test)
#: the probe's exit code when the workdir is not parbench's to use (nothing was touched)
PROBE_REFUSED = 3
#: the file that marks a workdir as parbench's
WORKDIR_MARKER = MARKER
#: what marks a file the probe is asked about as one with a stamp beside it (its
#: arguments: ``stamped:data/generated-1024.bin``), reported in ProbeFacts.stamps
PROBE_STAMPED = "stamped:"


# --- reference data generated on the nodes: what the bytes are is part of this contract
# (a node checks its data against the controller's digest of the same recipe) -----------
#: names the recipe below: a change of recipe must change it
DATA_GENERATOR = "parbench-gen/1"
GENERATED_CHUNK = 1 << 20
_PAGE = 4096
_HEADER = b"parbench page %021d\n"  # 36 bytes
_PATTERN: Optional[bytes] = None


def _generated_pattern() -> bytes:
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = hashlib.shake_256(DATA_GENERATOR.encode()).digest(GENERATED_CHUNK)
    return _PATTERN


def generated_chunks(size: int) -> Iterator[bytes]:
    """The generated data of ``size`` bytes, 1 MiB at a time: a 1 MiB pattern (SHAKE-256
    of a fixed seed: incompressible) repeated, every 4 KiB page starting with its own
    number (``parbench page 000000000000000000042\\n``: a lost, repeated or swapped page
    changes the digest), the last chunk cut to length."""
    if size < 0:
        raise ValueError(f"size must be 0 or more, got {size}")
    pattern = _generated_pattern()
    pages_per_chunk = GENERATED_CHUNK // _PAGE
    for index in range((size + GENERATED_CHUNK - 1) // GENERATED_CHUNK):
        chunk = bytearray(pattern)
        first = index * pages_per_chunk
        for page in range(pages_per_chunk):
            header = _HEADER % (first + page)
            chunk[page * _PAGE : page * _PAGE + len(header)] = header
        yield bytes(chunk[: min(GENERATED_CHUNK, size - index * GENERATED_CHUNK)])


def generated_sha256(size: int) -> str:
    """The sha256 of the generated data of ``size`` bytes."""
    digest = hashlib.sha256()
    for chunk in generated_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def generated_stamp_holds(stamp: Optional[str], found: Optional[dict], expected: str) -> bool:
    """Whether the stamp's text ``stamp`` vouches for the file as ``found`` (its size,
    mtime_ns and inode now) holding the data whose sha256 is ``expected``. The probe
    reports both, so that the controller need not run ``generate`` to learn it."""
    if stamp is None or found is None:
        return False
    try:
        said = json.loads(stamp)
    except ValueError:
        return False
    return said == {"generator": DATA_GENERATOR, "sha256": expected, **found}


class RequestError(ValueError):
    """A request that cannot be run; the message names the field."""


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

    def check(self, where: str) -> None:
        _choice(f"{where}.backend", self.backend, BACKENDS)
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


class _Message:
    """A dataclass sent as one JSON object."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RequestError(f"{what}: not JSON ({exc})") from None


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
        if BY_PHASE[self.phase].at_dst:
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
    def timed(self) -> bool:
        return self.phase in TIMED_PHASES

    @classmethod
    def from_json(cls, text: str) -> PhaseRequest:
        data = _parse(text, "request")
        if not isinstance(data, dict) or data.get("schema") != REQUEST_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else data
            _refuse("request.schema", repr(REQUEST_SCHEMA), found)
        return decode(cls, data, "request").check()


def phase_request(
    run_id: str,
    node: str,
    phase: str,
    storage: StorageConfig,
    clients: int,
    *,
    dst: Optional[str],
    local_dst: Optional[str],
    out: Optional[str],
    sources: Optional[Sequence[str]] = None,
    reference: Optional[Reference] = None,
    start: str = "now",
    start_at: Optional[float] = None,
    deadline: Optional[float] = None,
    controlled: bool = False,
    duration: Optional[float] = None,
    # the inventory's settings a request carries, named as there (``defaults.<name>``;
    # controller/run/settings.py declares them, with these defaults)
    chunk_size: int = 1024 * 1024,
    on_existing: str = "replace",
    latency: bool = True,
    series_interval: float = 1.0,
    meta_files: int = 100,
    meta_size: int = 0,
) -> PhaseRequest:
    """THE way a request is made, by the controller (controller/run/plan.py) and by the
    by-hand CLI alike: ``clients`` clients of ``node`` in ``phase``. Each client's path:
    read, the storage path in ``sources``; verify-read, its copy ``{local_dst}/{c}``
    (checked through a posix view of /); meta, ``{dst}/{node}/{c}.meta``; else
    ``{dst}/{node}/{c}``. The reference goes only to the phases that use it; a clean
    has no records file. RequestError when the result is not a valid request."""
    copies = [posixpath.join(local_dst, str(c)) if local_dst else None for c in range(clients)]
    if phase == "read":
        if sources is None or len(sources) != clients:
            _refuse("request.clients", f"a storage path for each of {clients} clients", sources)
        paths = list(sources)
    elif phase == "verify-read":  # the copies are local files: checked through a view of /
        paths = [p or "" for p in copies]
        storage = StorageConfig("posix", root="/", timeout=storage.timeout)
    elif phase == "meta" and dst is not None:
        paths = [meta_folder(dst, node, c) for c in range(clients)]
    else:
        paths = [posixpath.join(dst or "", node, str(c)) for c in range(clients)]
    with_copies = phase in COPY_PHASES
    return PhaseRequest(
        run_id=run_id,
        node=node,
        phase=phase,
        storage=storage,
        clients=tuple(
            ClientTask(c, path, copies[c] if with_copies else None) for c, path in enumerate(paths)
        ),
        dst=dst,
        local_dst=local_dst,
        reference=reference if phase in REFERENCE_PHASES else None,
        chunk_size=chunk_size,
        on_existing=on_existing,
        start=start,
        start_at=start_at,
        deadline=deadline,
        controlled=controlled,
        out=None if phase == "clean" else out,
        measure=Measure(latency, series_interval),
        duration=duration,
        meta=MetaWork(meta_files, meta_size) if phase == "meta" else None,
    ).check()


#: the default of each setting a request carries (``phase_request``'s keywords)
REQUEST_DEFAULTS: Dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(phase_request).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}


LOCK_SCHEMA = "parbench.lock/1"
#: an empty lock file older than this (seconds) is a crash's leftover, not a lock being
#: written (its create, write and fsync take milliseconds)
EMPTY_LOCK_STALE = 10.0
LOCK_ACTIONS = ("acquire", "renew", "release")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: written into the lock file, shown to whoever is refused."""

    run_id: str
    token: str  # one controller process on one run
    controller: str  # its host name
    pid: int
    user: str
    since: float  # epoch seconds, controller clock (shown, never compared with a node's)
    expires: float  # since + the lease, controller clock (shown; older holders: the lease)
    machine: str = ""  # the controller's machine id: host names repeat (containers)
    #: seconds the lock stays without being renewed; judged by the node, on its own clock,
    #: against the lock file's age (0: expires - since, as an older parbench wrote it)
    lease: float = 0.0
    pidns: str = ""  # the controller's pid namespace (/proc/self/ns/pid): pids repeat too


@dataclass(frozen=True)
class LockRequest(_Message):
    """Take, renew or give back the locks of a run on one node: its workdir's, and (on one
    node only) the storage root's ``{dst}``. A holder whose token is in ``take_over`` is
    gone (the controller decided) and is replaced. ``renew`` only refreshes a lock the
    holder still has (never takes one)."""

    action: str
    holder: Holder
    workdir: str
    storage: Optional[StorageConfig] = None  # with dst: lock the storage root too
    dst: Optional[str] = None
    take_over: Tuple[str, ...] = ()
    schema: str = LOCK_SCHEMA

    def check(self) -> LockRequest:
        if self.schema != LOCK_SCHEMA:
            _refuse("lock.schema", repr(LOCK_SCHEMA), self.schema)
        _choice("lock.action", self.action, LOCK_ACTIONS)
        _absolute("lock.workdir", self.workdir)
        if (self.storage is None) != (self.dst is None):
            _refuse("lock.dst", "a storage root exactly when storage is given", self.dst)
        if self.storage is not None:
            self.storage.check("lock.storage")
            _absolute("lock.dst", self.dst)
        return self

    @classmethod
    def from_json(cls, text: str) -> LockRequest:
        return decode(cls, _parse(text, "lock request"), "lock").check()


@dataclass(frozen=True)
class Stamped:
    """A file the probe was asked about with its stamp (worker/generate.py)."""

    stamp: Optional[str]  # the stamp's text, None when there is none
    file: Dict[str, int]  # size, mtime_ns and inode of the file now


@dataclass(frozen=True)
class ProbeFacts:
    """What the probe prints about a node (one JSON object), checked when read."""

    hostname: str
    platform: str
    python: Tuple[int, ...]
    hashes: Dict[str, Optional[str]]  # sha256 of each file asked about, None if absent
    worker_files: Tuple[str, ...]
    runtime: Optional[str]  # the venv's stamp
    machine: Optional[str] = None  # /etc/machine-id, else the host name
    workdir_id: Optional[Tuple[int, ...]] = None  # (st_dev, st_ino), None before it exists
    stamps: Dict[str, Optional[Stamped]] = field(default_factory=dict)  # None: no such file

    @classmethod
    def from_json(cls, text: str) -> ProbeFacts:
        return decode(cls, _parse(text, "probe"), "probe")


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


# --- typed decoding: every field checked against its annotation ------------------------


def decode(kind: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as an instance of the annotation ``kind``; RequestError
    naming ``where`` when it does not fit. Unknown keys of a dataclass are refused."""
    if is_dataclass(kind):
        if not isinstance(value, dict):
            _refuse(where, "an object", value)
        hints = get_type_hints(kind)
        known = {f.name: f for f in fields(kind)}
        for key in value:
            if key not in known:
                raise RequestError(f"{where}.{key}: unknown field")
        given = {}
        for name, spec in known.items():
            if name in value:
                given[name] = decode(hints[name], value[name], f"{where}.{name}")
            elif spec.default is MISSING and spec.default_factory is MISSING:
                raise RequestError(f"{where}.{name}: missing")
        return kind(**given)
    origin = getattr(kind, "__origin__", None)
    args = getattr(kind, "__args__", ())
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], value, where)
    if origin is dict:
        if not isinstance(value, dict):
            _refuse(where, "an object", value)
        return {
            decode(args[0], key, f"{where}.{key}"): decode(args[1], item, f"{where}.{key}")
            for key, item in value.items()
        }
    if origin in (tuple, Tuple):
        if not isinstance(value, list):
            _refuse(where, "a list", value)
        return tuple(decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _refuse(where, "a number", value)
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _refuse(where, "an integer", value)
        return value
    if kind is str:
        if not isinstance(value, str):
            _refuse(where, "a string", value)
        return value
    if kind is bool:
        if not isinstance(value, bool):
            _refuse(where, "true or false", value)
        return value
    raise TypeError(f"{where}: no decoder for {kind!r}")  # a bug in this module


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(where: str, expected: str, value: Any) -> None:
    raise RequestError(f"{where}: expected {expected}, got {_show(value)}")


def _choice(where: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        _refuse(where, "one of " + ", ".join(choices), value)


def _pattern(where: str, value: str, pattern: re.Pattern) -> None:
    if not pattern.fullmatch(value):
        _refuse(where, f"a plain name matching {pattern.pattern}", value)


def _absolute(where: str, path: Optional[str], allow_root: bool = False) -> None:
    """An absolute, normalised POSIX path without control characters (and not / unless
    ``allow_root``)."""
    ok = (
        isinstance(path, str)
        and path.startswith("/")
        and posixpath.normpath(path) == path
        and (allow_root or path != "/")
        and not any(ord(c) < 32 for c in path)
    )
    if not ok:
        what = "an absolute, normalised path" + ("" if allow_root else " other than /")
        _refuse(where, what, path)


# --- the lines on a node's session -----------------------------------------------------
# THE lines on a node's SSH session, each kind once: a dataclass per kind of line, one
# encoder (:func:`encode_line`) and one decoder (:func:`decode_line`) for all of them. Part of the
# contract (with protocol.py, results.py, layout.py): the worker writes and reads these,
# the controller reads and writes them; neither frames a line by hand.
#
# From the worker (stdout): :class:`Ready` (the start barrier), :class:`Record` (a saved
# client record, told), :class:`Progress` (live progress), the agent's
# :class:`AgentReady`, :class:`AgentStarted`, :class:`AgentDone` and :class:`Stderr` (a
# line of the phase's stderr), :class:`LockReply` (the answer to a lock request), the
# probe's :class:`Clock`. From the controller (stdin): :class:`Go`, :class:`Stop`, and to
# the agent :class:`LockAsk`, :class:`RunAsk`, to the probe :class:`BecomeAgent` and
# :class:`ClockAsk`.
#
# The probe (worker/probe.py) runs as ``python -c`` before this package is on the node:
# it keeps its own copies of its lines (``PROBE_COPIES`` below), checked equal by a test.
# A line is encoded without its newline. Stdlib only, Python 3.9+.


READY = "parbench-ready"
GO = "go"
STOP = "stop"
RECORD = "@record"
PROGRESS = "@progress"
STDERR = "@stderr"
AGENT_READY = "parbench-agent ready"
AGENT_STARTED = "parbench-agent started"
AGENT_DONE = "parbench-agent done"
LOCK_REPLY = "parbench-lock"
LOCK = "lock"
RUN = "run"
BECOME_AGENT = "agent"

#: the probe's copies of these (worker/probe.py cannot import): its name -> the value
PROBE_COPIES = {"LOCK_REPLY": LOCK_REPLY, "AGENT": BECOME_AGENT, "LOCK_ASK": LOCK + " "}


class MessageError(ValueError):
    """A line of a known kind whose body cannot be read."""

    def __init__(self, kind: type, text: str) -> None:
        super().__init__(text)
        self.kind = kind  # the kind of message the line was meant to be


@dataclass(frozen=True)
class Ready:
    """The worker's clients are all ready: it waits for :class:`Go` (or :class:`Stop`)."""

    node: str


@dataclass(frozen=True)
class Go:
    """Start at ``at`` (epoch seconds, the node's clock)."""

    at: float


@dataclass(frozen=True)
class Stop:
    """The controller was interrupted: no client starts, running ones stop."""


@dataclass(frozen=True)
class Record:
    """A client record the worker saved, told on its output."""

    result: ClientResult


@dataclass(frozen=True)
class Progress:
    """How far a node's clients have got (worker/progress.py), drawn by the controller."""

    phase: str
    node: str
    done: int
    total: int
    bytes: int
    files: int


@dataclass(frozen=True)
class Stderr:
    """A line the phase the agent runs wrote on stderr (shown as stderr)."""

    text: str


@dataclass(frozen=True)
class AgentReady:
    """The agent's first line."""


@dataclass(frozen=True)
class AgentStarted:
    """The child running a phase for the agent is up: what is sent now is the child's."""


@dataclass(frozen=True)
class AgentDone:
    """The phase the agent ran has ended with this exit code."""

    code: int


@dataclass(frozen=True)
class LockReply:
    """The answer to a lock request: for each place, held or not and by whom (checked by
    the controller: controller/nodes/holders.py)."""

    reply: Any


@dataclass(frozen=True)
class LockAsk:
    """Take, renew or give back locks: a protocol.LockRequest as JSON."""

    request: str


@dataclass(frozen=True)
class RunAsk:
    """Run a phase in the agent: the request's JSON, kept at ``save`` on the node first."""

    save: str
    request: str


@dataclass(frozen=True)
class BecomeAgent:
    """Asks the probe to exec the workdir's worker as the node's agent."""


@dataclass(frozen=True)
class ClockAsk:
    """Asks the probe for its clock (an empty line)."""


@dataclass(frozen=True)
class Clock:
    """The probe's clock: epoch seconds (untagged: read with :func:`decode_clock`)."""

    at: float


Message = Union[
    Ready, Go, Stop, Record, Progress, Stderr, AgentReady, AgentStarted, AgentDone,
    LockReply, LockAsk, RunAsk, BecomeAgent, ClockAsk, Clock,
]  # fmt: skip


def encode_line(msg: Message) -> str:
    """The line of ``msg``, without its newline."""
    if isinstance(msg, Ready):
        return f"{READY} {msg.node}"
    if isinstance(msg, Go):
        return f"{GO} {msg.at:.6f}"
    if isinstance(msg, Stop):
        return STOP
    if isinstance(msg, Record):
        return f"{RECORD} {msg.result.to_json()}"
    if isinstance(msg, Progress):
        fields = {"phase": msg.phase, "node": msg.node, "done": msg.done, "total": msg.total}
        return f"{PROGRESS} " + json.dumps({**fields, "bytes": msg.bytes, "files": msg.files})
    if isinstance(msg, Stderr):
        return f"{STDERR} {msg.text}"
    if isinstance(msg, AgentReady):
        return AGENT_READY
    if isinstance(msg, AgentStarted):
        return AGENT_STARTED
    if isinstance(msg, AgentDone):
        return f"{AGENT_DONE} {msg.code}"
    if isinstance(msg, LockReply):
        return f"{LOCK_REPLY} {json.dumps(msg.reply, sort_keys=True)}"
    if isinstance(msg, LockAsk):
        return f"{LOCK} {msg.request}"
    if isinstance(msg, RunAsk):
        return f"{RUN} " + json.dumps({"save": msg.save, "request": msg.request})
    if isinstance(msg, BecomeAgent):
        return BECOME_AGENT
    if isinstance(msg, ClockAsk):
        return ""
    if isinstance(msg, Clock):
        return repr(msg.at)
    raise TypeError(f"not a message: {msg!r}")  # a bug in the caller


def kind(line: str) -> Optional[type]:
    """The kind of message ``line`` is by its tag (its body not read: cheap), None when it
    is none. The probe's clock is untagged: :func:`decode_clock`."""
    line = line.rstrip("\n")
    word, _, body = line.partition(" ")
    if body:
        found = _TAGGED.get(word)
        if found is not None:
            return found
        if line.startswith(AGENT_DONE + " "):
            return AgentDone
    if word == STDERR and line.startswith(STDERR + " "):
        return Stderr
    return _WHOLE.get(line.strip())


def decode_line(line: str) -> Optional[Message]:
    """The message ``line`` is (its newline, if any, ignored), None when it is none (a line
    for people; a progress line of fields this worker does not know). MessageError when
    it is of a known kind but its body cannot be read. The probe's clock is untagged:
    :func:`decode_clock`."""
    found = kind(line)
    if found is None:
        return None
    line = line.rstrip("\n")
    body = line.partition(" ")[2]
    if found in (Stop, AgentReady, AgentStarted, BecomeAgent):
        return found()
    if found is Ready:
        return Ready(body)
    if found is Stderr:
        return Stderr(body)
    if found is LockAsk:
        return LockAsk(body)
    if found is Progress:
        return _progress(body)
    try:
        if found is Go:
            return Go(float(body))
        if found is AgentDone:
            return AgentDone(int(line[len(AGENT_DONE) + 1 :]))
        if found is Record:
            return Record(ClientResult.from_dict(json.loads(body)))
        if found is LockReply:
            return LockReply(json.loads(body))
        asked = json.loads(body)
        return RunAsk(str(asked["save"]), str(asked["request"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise MessageError(found, _cannot(found, line, exc)) from None


def _cannot(found: type, line: str, exc: Exception) -> str:
    """Why ``line``, a message of kind ``found``, cannot be read."""
    if found is Go:
        return f"{GO}: not a time: {line[len(GO) + 1 :][:80]!r}"
    if found is AgentDone:
        return f"{AGENT_DONE}: not an exit code: {line[:80]!r}"
    if found is Record:
        return str(exc)
    if found is LockReply:
        body = line[len(LOCK_REPLY) + 1 :]
        return f"the lock reply is not JSON ({exc}): {body[:80]!r}"
    return f"{type(exc).__name__}: {exc}"


#: tag -> the kind of a line ``TAG BODY``
_TAGGED = {
    READY: Ready, GO: Go, RECORD: Record, PROGRESS: Progress, LOCK_REPLY: LockReply,
    LOCK: LockAsk, RUN: RunAsk,
}  # fmt: skip
#: a line that is the whole message
_WHOLE = {
    STOP: Stop, AGENT_READY: AgentReady, AGENT_STARTED: AgentStarted, BECOME_AGENT: BecomeAgent,
}  # fmt: skip


def _progress(body: str) -> Optional[Progress]:
    try:
        found = json.loads(body)
        return Progress(
            str(found["phase"]), str(found["node"]), int(found["done"]),
            int(found["total"]), int(found["bytes"]), int(found["files"]),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError):
        return None  # not ours to judge: a newer worker's line


def decode_progress(line: str) -> Optional[Progress]:
    """The progress ``line`` tells, None when it is none (or of fields not known here)."""
    return _progress(line.rstrip("\n").partition(" ")[2]) if kind(line) is Progress else None


def decode_clock(line: str) -> Optional[Clock]:
    """The probe's clock answer, None when ``line`` is not one."""
    try:
        return Clock(float(line))
    except ValueError:
        return None


def for_the_controller(line: str) -> bool:
    """Whether a line of the worker's output is for the controller, not for people: its
    live progress and the records it tells after saving them (a damaged one too, and a
    progress line of fields this controller does not know)."""
    word, _, body = line.rstrip("\n").partition(" ")
    if word == RECORD:
        return bool(body)
    if word == PROGRESS and body:
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:
            return False
    return False


def is_record(line: str) -> bool:
    """Whether ``line`` tells a record (read or not: a damaged one is an error)."""
    return line.startswith(RECORD + " ")


def ready_in(output: str) -> bool:
    """Whether ``output`` (a worker's output so far) has its :class:`Ready` line."""
    return any(line.startswith(READY + " ") for line in output.splitlines())


def told_records(output: str, source: str) -> List[ClientResult]:
    """The records a worker's stdout ``output`` told (ValueError naming ``source`` and the
    record's number when one of them cannot be read)."""
    told: List[ClientResult] = []
    for number, line in enumerate((x for x in output.splitlines() if is_record(x)), 1):
        try:
            msg = decode_line(line)
        except MessageError as exc:
            raise ValueError(f"{source}:{number}: {exc}") from exc
        if isinstance(msg, Record):  # None: "@record " alone, nothing told
            told.append(msg.result)
    return told
