"""Command line of the worker on a client node.

- ``python -m worker run REQUEST.json [--json TEXT]``: what the controller runs; the file
  holds (or is given) one :class:`worker.protocol.PhaseRequest`.
- ``python -m worker lock JSON`` and ``python -m worker agent``: the run's locks, alone
  or over the controller's open session (worker/agent.py).
- ``python -m worker {write,read,verify-write,verify-read,clean} ...``: the same by hand,
  with the original scripts' options; they build the same request.

Exit status: :class:`worker.protocol.ExitCode`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import posixpath
import socket
import sys
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Union

from . import agent, generate, lock, made, progress
from .clean import UnsafePath, clean, clean_workdir
from .clients import Identity, Job, run_clients
from .meta import MetaJob
from .native import NativeJob
from .protocol import (
    BACKENDS,
    COPY_PHASES,
    GO,
    NODE_ID,
    ON_EXISTING,
    READ_TYPES,
    READY,
    REFERENCE_PHASES,
    REQUEST_DEFAULTS,
    S3_ADDRESSING,
    TIMED_PHASES,
    WRITE_TYPES,
    ClientTask,
    ExitCode,
    PhaseRequest,
    Progress,
    Record,
    Reference,
    RequestError,
    StorageConfig,
    UnitError,
    encode_line,
    load_request,
    parse_duration,
    parse_size,
    phase_request,
    save_request,
)
from .report import format_size, progress_line, summary_line
from .results import ClientResult, write_file
from .start import ControllerLink
from .stop import DEADLINE, StopSignal, stop_on_signals
from .storage import StorageError, describe_error, make_storage, preload
from .transfer import ReadJob, WriteJob, expand_sources
from .verify import ReferenceDigest, VerifyJob

#: start "stdin" without a deadline: how long to wait for the controller's answer
START_WAIT = 1800.0

Work = Union[List[Job], List[ClientResult]]  # jobs to run, or records already decided


# --- the by-hand command line -> a PhaseRequest ------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _size(low: int) -> Callable[[str], int]:
    """Bytes from ``4096``, ``4K``, ``1MiB``, ``2MB`` (``worker.protocol.units``)."""

    def size(text: str) -> int:
        try:
            value = parse_size(text)
        except UnitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low} bytes, got {text}")
        return value

    return size


def _positive_seconds(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1m30s``, ``2h`` (``worker.protocol.units``)."""
    try:
        value = parse_duration(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--node", required=True, metavar="NID", help="this node's id, e.g. n0")
    group.add_argument(
        "--clients",
        "--nfile",  # its old name
        dest="clients",
        required=True,
        type=_positive_int,
        metavar="N",
        help="number of clients (one process and one file each; --nfile is the same)",
    )
    group.add_argument("--backend", choices=BACKENDS, default="alluxio")
    group.add_argument("--host", default="localhost", help="Alluxio REST proxy host")
    group.add_argument("--port", type=_positive_int, default=39999, help="Alluxio proxy port")
    group.add_argument(
        "--root",
        metavar="DIR",
        help="posix backend: storage path /a/b is DIR/a/b (required for posix)",
    )
    group.add_argument("--endpoint", metavar="URL", help="s3 backend: the S3 API's URL")
    group.add_argument("--addressing", choices=S3_ADDRESSING, default="path", help="s3 backend")
    group.add_argument("--region", default="us-east-1", help="s3 backend: the signing region")
    group.add_argument("--profile", help="s3 backend: the AWS profile whose credentials sign")
    group.add_argument("--access-key", help="s3 backend: the access key id (secret: the node's)")
    group.add_argument("--write-type", choices=WRITE_TYPES, default="CACHE_THROUGH")
    group.add_argument("--read-type", choices=READ_TYPES, default="CACHE")
    group.add_argument(
        "--chunk-size",
        type=_size(1),
        default=REQUEST_DEFAULTS["chunk_size"],
        metavar="SIZE",
        help="bytes per request, e.g. 4096, 4K, 1MiB, 2MB (defaults.chunk_size)",
    )
    start = group.add_mutually_exclusive_group()
    start.add_argument(
        "--start-at",
        type=float,
        metavar="EPOCH_SECONDS",
        help="common start time on this node's clock (default: when all clients are ready)",
    )
    start.add_argument(
        "--start-on-stdin",
        action="store_true",
        help=f"once all clients are ready, print '{READY} ...' and start at the time"
        f" of a '{GO} EPOCH_SECONDS' line read from stdin (what the controller does)",
    )
    group.add_argument(
        "--deadline",
        type=float,
        metavar="EPOCH_SECONDS",
        help="terminate clients still running then, with error records (default: none)",
    )
    group.add_argument(
        "--duration",
        type=_positive_seconds,
        metavar="SECONDS",
        help="write, read: each client moves files one after another until then (write:"
        " ROOT/NID/c, then ROOT/NID/c.1, ...)",
    )
    group.add_argument(
        "--no-latency", action="store_true", help="record no per-operation latency histograms"
    )
    group.add_argument(
        "--interval",
        type=float,
        default=REQUEST_DEFAULTS["series_interval"],
        metavar="SECONDS",
        help="seconds per point of the throughput series (0.1..3600; 0: no series)",
    )
    group.add_argument("--run-id", default=time.strftime("manual-%Y%m%dT%H%M%S"))
    group.add_argument(
        "--out", metavar="FILE", help="JSON lines records (default ./parbench-<phase>.jsonl)"
    )
    group.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600.0,
        metavar="SECONDS",
        help="per-request timeout: seconds, or like 90s, 10m",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker", description="parbench worker: N parallel clients on this node"
    )
    phases = parser.add_subparsers(dest="phase", metavar="PHASE")
    phases.required = True
    common = [_common_options()]

    run = phases.add_parser("run", help="run the phase request in a JSON file (the controller)")
    run.add_argument("request", metavar="REQUEST.json")
    run.add_argument(
        "--json", metavar="TEXT", help="the request itself, saved to REQUEST.json first"
    )
    phases.add_parser("agent", help="answer the controller's requests on stdin (the controller)")
    lock = phases.add_parser("lock", help="take or give back a run's locks (the controller)")
    lock.add_argument("request", metavar="LOCK_REQUEST_JSON")
    made = phases.add_parser("generate", help="make the generated reference data (the controller)")
    made.add_argument("--bytes", type=int, required=True, metavar="SIZE")
    made.add_argument("--sha256", required=True, help="what the data must hash to")
    made.add_argument("--out", required=True, metavar="FILE")

    write = phases.add_parser("write", parents=common, help="write the reference file N times")
    write.add_argument("--src", required=True, metavar="LOCAL_REF_FILE")
    write.add_argument("--dst", required=True, metavar="ROOT", help="client c writes ROOT/NID/c")
    write.add_argument(
        "--on-existing", choices=ON_EXISTING, default=REQUEST_DEFAULTS["on_existing"]
    )

    read = phases.add_parser("read", parents=common, help="read N storage files to local copies")
    read.add_argument(
        "--src",
        required=True,
        action="append",
        metavar="PATH",
        help='once, with "{cid}" replaced by the client id; or N times',
    )
    read.add_argument(
        "--dst", required=True, metavar="LOCAL_DIR", help="client c saves its copy to LOCAL_DIR/c"
    )

    verify_write = phases.add_parser(
        "verify-write", parents=common, help="check ROOT/NID/c in storage against the reference"
    )
    verify_write.add_argument("--src", required=True, metavar="LOCAL_REF_FILE")
    verify_write.add_argument("--dst", required=True, metavar="ROOT")

    verify_read = phases.add_parser(
        "verify-read", parents=common, help="check LOCAL_DIR/c against the reference"
    )
    verify_read.add_argument("--src", required=True, metavar="LOCAL_REF_FILE")
    verify_read.add_argument("--dst", required=True, metavar="LOCAL_DIR")

    meta = phases.add_parser(
        "meta", parents=common, help="create, stat, list, delete files in ROOT/NID/c.meta"
    )
    meta.add_argument("--dst", required=True, metavar="ROOT")
    meta.add_argument(
        "--files", type=_positive_int, default=REQUEST_DEFAULTS["meta_files"], metavar="K"
    )
    meta.add_argument(
        "--size",
        type=_size(0),
        default=REQUEST_DEFAULTS["meta_size"],
        metavar="SIZE",
        help="of each file, e.g. 0, 4K, 1MiB",
    )

    cleaner = phases.add_parser(
        "clean", parents=common, help="delete ROOT/NID in storage and LOCAL_DIR/<cid> copies"
    )
    cleaner.add_argument("--dst", required=True, metavar="ROOT")
    cleaner.add_argument("--local-dst", required=True, metavar="LOCAL_DIR")
    return parser


def request_from_args(args: argparse.Namespace) -> PhaseRequest:
    """The request the by-hand options describe (storage paths as given, local paths
    made absolute); RequestError or ValueError when they do not make one."""
    if not NODE_ID.fullmatch(args.node):  # it becomes a path segment: {dst}/{node}/{cid}
        raise RequestError(
            f"--node must be a plain path segment ([A-Za-z0-9._-]), got {args.node!r}"
        )
    phase, n = args.phase, args.clients
    storage = StorageConfig(
        args.backend,
        args.host,
        args.port,
        args.root,
        args.write_type,
        args.read_type,
        args.timeout,
        endpoint=args.endpoint,
        addressing=args.addressing,
        region=args.region,
        profile=args.profile,
        access_key=args.access_key,
        part_size=args.chunk_size,
    )
    if storage.backend == "native":
        raise RequestError(
            "--backend native runs under the controller (fab write --backend native); by hand,"
            " run {alluxio_home}/bin/alluxio runClass alluxio.stress.cli.client."
            "StressClientIOBench yourself"
        )
    if phase != "verify-read" and storage.backend == "posix" and not storage.root:
        raise RequestError("--backend posix needs --root DIR")
    if phase != "verify-read" and storage.backend == "s3" and not storage.endpoint:
        raise RequestError("--backend s3 needs --endpoint URL")
    dst, local_dst = args.dst, None
    if phase in COPY_PHASES:  # --dst is the local folder of the copies
        dst, local_dst = None, os.path.abspath(args.dst)
    if phase == "clean":
        local_dst = os.path.abspath(args.local_dst)
    start = "at" if args.start_at is not None else "now"
    if args.start_on_stdin:
        start = "stdin"
    return phase_request(
        args.run_id,
        args.node,
        phase,
        storage,
        n,
        dst=dst,
        local_dst=local_dst,
        out=args.out or f"parbench-{phase}.jsonl",
        sources=expand_sources(args.src, n) if phase == "read" else None,
        reference=Reference(os.path.abspath(args.src)) if phase in REFERENCE_PHASES else None,
        start=start,
        start_at=args.start_at,
        deadline=args.deadline,
        controlled=args.start_on_stdin,
        duration=args.duration,
        **_settings(args),
    )


def _settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The options that set one of the inventory's settings (``defaults.<name>``), by
    that name; a phase's own ones when it has them."""
    settings = {
        "chunk_size": args.chunk_size,
        "latency": not args.no_latency,
        "series_interval": args.interval,
    }
    for option, name in (
        ("on_existing", "on_existing"),
        ("files", "meta_files"),
        ("size", "meta_size"),
    ):
        if hasattr(args, option):
            settings[name] = getattr(args, option)
    return settings


# --- a PhaseRequest -> client jobs ------------------------------------------------------


def _identity(request: PhaseRequest, task: ClientTask, host: str) -> Identity:
    return Identity(
        request.run_id,
        request.phase,
        request.node,
        task.client,
        host,
        request.storage.backend,
        task.path,
        task.local_path,
        request.iteration,
        request.warmup,
    )


def _write_jobs(request: PhaseRequest, host: str) -> Work:
    assert request.reference is not None
    return [
        WriteJob(
            _identity(request, task, host),
            request.storage,
            request.reference.path,
            request.chunk_size,
            request.on_existing,
            request.measure,
            request.duration,
        )
        for task in request.clients
    ]


def _read_jobs(request: PhaseRequest, host: str) -> Work:
    return [
        ReadJob(
            _identity(request, task, host),
            request.storage,
            request.chunk_size,
            request.measure,
            request.duration,
            task.files,
        )
        for task in request.clients
    ]


def _native_jobs(request: PhaseRequest, host: str) -> Work:
    """One StressClientIOBench run for all the node's clients (worker/native.py)."""
    ref, dst = request.reference, request.dst
    identity = _identity(request, request.clients[0], host)
    assert dst is not None
    identity = replace(identity, path=posixpath.join(dst, request.node, "native"))
    try:
        if ref is None:
            raise ValueError("the request names no reference file, whose size the files have")
        size = ref.bytes if ref.bytes is not None else os.path.getsize(ref.path)
    except (OSError, ValueError) as exc:
        cause = describe_error(exc) if isinstance(exc, OSError) else str(exc)
        return [
            identity.failure(
                cause, files=0, latency=None, series=None, threads=len(request.clients)
            )
        ]
    assert request.out is not None
    keep = f"{os.path.splitext(request.out)[0]}.native"
    return [
        NativeJob(
            identity,
            request.storage,
            dst,
            len(request.clients),
            size,
            request.chunk_size,
            request.duration,
            keep,
        )
    ]


def _expected(request: PhaseRequest) -> ReferenceDigest:
    """Size and sha256 of the node's reference file, which must be what the run sealed."""
    ref = request.reference
    assert ref is not None
    found = ReferenceDigest.of(ref.path, "sha256", request.chunk_size)
    if ref.sha256 is not None and (found.size, found.checksum) != (ref.bytes, ref.sha256):
        raise ValueError(
            f"reference file {ref.path} is not the run's ({found.size} bytes, sha256 "
            f"{found.checksum[:12]}... where the run has {ref.bytes} bytes, "
            f"{ref.sha256[:12]}...)"
        )
    return found


def _verify_jobs(request: PhaseRequest, host: str) -> Work:
    identities = [_identity(request, task, host) for task in request.clients]
    try:
        reference = _expected(request)
    except (OSError, ValueError) as exc:
        cause = describe_error(exc) if isinstance(exc, OSError) else str(exc)
        assert request.reference is not None
        if isinstance(exc, OSError):
            cause = f"reference file {request.reference.path}: {cause}"
        return [identity.failure(cause, method="stream") for identity in identities]
    return [
        VerifyJob(identity, request.storage, reference, request.chunk_size, task.files, task.expect)
        for identity, task in zip(identities, request.clients)
    ]


def _meta_jobs(request: PhaseRequest, host: str) -> Work:
    assert request.meta is not None
    return [
        MetaJob(
            _identity(request, task, host),
            request.storage,
            request.meta.files,
            request.meta.size,
            request.measure,
        )
        for task in request.clients
    ]


BUILDERS: dict = {
    "write": _write_jobs,
    "read": _read_jobs,
    "verify-write": _verify_jobs,
    "verify-read": _verify_jobs,
    "meta": _meta_jobs,
}


# --- running ----------------------------------------------------------------------------


class Forgiving(io.TextIOBase):
    """A stream that drops what it cannot write (the controller's connection is gone)
    instead of failing the worker before it has saved its records."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError):
            self.inner.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self.inner.flush()


def _show(result: ClientResult) -> None:
    """One line per finished client; a failure's short cause is on it, once (the whole
    chain is in the record's ``detail``)."""
    print(progress_line(result), flush=True)


def _clean(request: PhaseRequest) -> ExitCode:
    host = socket.gethostname()
    assert request.local_dst is not None
    try:
        with make_storage(request.storage) as storage:
            lines = clean(
                storage, request.dst, request.node, request.local_dst, len(request.clients)
            )
            for line in lines:
                print(f"clean {line}")
        tidy = request.workdir_clean
        if tidy is not None:  # its own request's folder stays: it is being read
            keep = (*tidy.keep, request.run_id)
            for line in clean_workdir(tidy.workdir, tidy.data, tidy.runs, keep):
                print(f"clean {line}")
    except (UnsafePath, StorageError, OSError) as exc:
        print(f"parbench worker: {host}: clean: {describe_error(exc)}", file=sys.stderr)
        return ExitCode.NOT_OK
    return ExitCode.OK


#: seconds between progress lines: for the controller's live view, for a person's terminal
PROGRESS_CONTROLLED, PROGRESS_BY_HAND = 1.0, 10.0


def _progress(request: PhaseRequest, tally: progress.Tally) -> Callable[[int, int], None]:
    """Under the controller, a machine line (worker/progress.py) it draws; by hand, a line
    for a person."""
    began = time.monotonic()
    phase, node = request.phase, request.node

    def show(done: int, total: int) -> None:
        moved, files = tally.totals()
        if request.controlled:
            print(encode_line(Progress(phase, node, done, total, moved, files)), flush=True)
            return
        print(
            f"{phase} {node}: {done}/{total} clients done, {format_size(moved)}, {files} files"
            f" after {time.monotonic() - began:.0f} s",
            flush=True,
        )

    return show


def _common_start(request: PhaseRequest, stop: StopSignal) -> Callable[[], Optional[float]]:
    """When the clients, once all ready, start: a given time, the controller's, or at once.
    A controlled worker listens to the controller from the beginning, for a stop."""
    link = None
    if request.start == "stdin" or request.controlled:
        link = ControllerLink(stop, request.controlled)
    if request.start == "stdin":
        assert link is not None
        # the controller answers every ready node; without a deadline, wait a phase long
        until = request.deadline if request.deadline is not None else time.time() + START_WAIT
        return lambda: link.ask(request.node, until - time.time())
    return lambda: request.start_at


def _after_clients(request: PhaseRequest, results: List[ClientResult]) -> List[ClientResult]:
    """The records with the storage's version and (write, read) the tag of each file they
    left, asked once per node after the clients are done (never on the timed path); as
    they are where the storage cannot tell."""
    try:
        with make_storage(request.storage) as storage:
            version = storage.server_version()
            try:  # native: StressBench's files have its content, no tag of the run's
                if not request.native:
                    results = made.tagged(request, storage, results)
            except (StorageError, OSError) as exc:
                print(
                    f"parbench worker: {request.node}: {request.phase}: the files made could not"
                    f" be tagged ({describe_error(exc)}): verify checks their content only",
                    file=sys.stderr,
                )
    except Exception:  # noqa: BLE001 - a version is a nicety; the records stand
        version = None
    return [replace(r, cluster=version) for r in results] if version else results


def execute(request: PhaseRequest) -> ExitCode:
    """Run the request's clients, save one record each to ``request.out``."""
    if request.phase == "clean":
        return _clean(request)
    assert request.out is not None
    builder = _native_jobs if request.native else BUILDERS[request.phase]
    work = builder(request, socket.gethostname())
    if request.start_at is not None and request.start_at < time.time():
        print(
            f"parbench worker: --start-at is {time.time() - request.start_at:.1f} s in the"
            " past; starting at once",
            file=sys.stderr,
        )
    jobs = [item for item in work if isinstance(item, Job)]
    preload(request.storage.backend)  # once, before the clients fork
    stop = StopSignal(multiprocessing.get_context())
    stop_on_signals(stop)
    if request.controlled:  # a lost connection must not stop the records being saved
        sys.stdout, sys.stderr = Forgiving(sys.stdout), Forgiving(sys.stderr)
    if jobs:
        tally = progress.Tally(multiprocessing.get_context(), len(jobs))
        results = run_clients(
            jobs,
            on_result=_show,
            deadline=request.deadline,
            on_progress=_progress(request, tally),
            progress_every=PROGRESS_CONTROLLED if request.controlled else PROGRESS_BY_HAND,
            start=_common_start(request, stop),
            stop=stop,
            tally=tally,
        )
    else:
        results = [item for item in work if isinstance(item, ClientResult)]
        for result in results:
            _show(result)
    if results and request.phase in TIMED_PHASES and not stop.requested:
        results = _after_clients(request, results)
    try:
        write_file(results, request.out)
    except OSError as exc:
        print(
            f"parbench worker: {socket.gethostname()}: cannot save records to {request.out}: "
            f"{describe_error(exc)}",
            file=sys.stderr,
        )
        return ExitCode.NOT_SAVED
    if request.controlled:  # saved: the controller takes them from here, the file stays
        for result in results:
            print(encode_line(Record(result)))
    print(summary_line(request.phase, request.node, results, request.out), flush=True)
    if stop.requested and stop.requested != DEADLINE:
        print(f"parbench worker: {request.node}: {stop.reason}", file=sys.stderr, flush=True)
    done = ExitCode.OK if results and all(r.ok for r in results) else ExitCode.NOT_OK
    return stop.exit_code(done)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.phase == "lock":
        return lock.main(args.request)
    if args.phase == "agent":
        with contextlib.suppress(ImportError):  # a posix-only node may lack it: its phase says so
            preload("alluxio")  # once for every phase and lock it will fork or take
        return agent.serve(sys.stdin, sys.stdout, execute)
    if args.phase == "generate":
        return generate.run(args.out, args.bytes, args.sha256)
    try:
        if args.phase == "run" and args.json is not None:
            save_request(args.request, args.json)
        request = load_request(args.request) if args.phase == "run" else request_from_args(args)
    except (RequestError, ValueError) as exc:
        parser.error(str(exc))  # exits 2 (ExitCode.USAGE)
    return int(execute(request))


if __name__ == "__main__":
    sys.exit(main())
