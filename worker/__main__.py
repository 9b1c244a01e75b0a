"""Command line of the worker: ``python -m worker PHASE ...`` on a client node.

Exit status:

- 0 every record ok (``clean``: everything removed)
- 1 some record not ok (``clean``: something could not be removed)
- 2 usage error
- 3 records could not be saved
- 130 interrupted
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Callable, List, Optional, Sequence, Union

from worker.clean import NODE_ID, UnsafePath, clean
from worker.clients import Identity, Job, run_clients
from worker.report import progress_line, summary_line
from worker.results import PHASES, ClientResult, write_file
from worker.start import GO, READY_MARKER, ask_controller
from worker.storage import (
    BACKENDS,
    READ_TYPES,
    WRITE_TYPES,
    StorageConfig,
    StorageError,
    describe_error,
    make_storage,
)
from worker.transfer import ON_EXISTING, ReadJob, WriteJob, expand_sources, write_target
from worker.verify import Reference, VerifyJob

#: --start-on-stdin without --deadline: how long to wait for the controller's answer
START_WAIT = 1800.0
EXIT_NOT_SAVED = 3  # distinct from 1 (some record not ok): no records to collect at all

Work = Union[List[Job], List[ClientResult]]  # jobs to run, or records already decided


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--node", required=True, metavar="NID", help="this node's id, e.g. n0")
    group.add_argument(
        "--nfile",
        required=True,
        type=_positive_int,
        metavar="N",
        help="number of clients (one process and one file each)",
    )
    group.add_argument("--backend", choices=BACKENDS, default="alluxio")
    group.add_argument("--host", default="localhost", help="Alluxio REST proxy host")
    group.add_argument("--port", type=_positive_int, default=39999, help="Alluxio proxy port")
    group.add_argument(
        "--root",
        metavar="DIR",
        help="posix backend: storage path /a/b is DIR/a/b (required for posix)",
    )
    group.add_argument("--write-type", choices=WRITE_TYPES, default="CACHE_THROUGH")
    group.add_argument("--read-type", choices=READ_TYPES, default="CACHE")
    group.add_argument("--chunk-size", type=_positive_int, default=1024 * 1024, metavar="BYTES")
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
        help=f"once all clients are ready, print '{READY_MARKER} ...' and start at the time"
        f" of a '{GO} EPOCH_SECONDS' line read from stdin (what the controller does)",
    )
    group.add_argument(
        "--deadline",
        type=float,
        metavar="EPOCH_SECONDS",
        help="terminate clients still running then, with error records (default: none)",
    )
    group.add_argument("--run-id", default=time.strftime("manual-%Y%m%dT%H%M%S"))
    group.add_argument(
        "--out", metavar="FILE", help="JSON lines records (default ./parbench-<phase>.jsonl)"
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=600.0,
        metavar="SECONDS",
        help="per-request timeout",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker", description="parbench worker: N parallel clients on this node"
    )
    phases = parser.add_subparsers(dest="phase", metavar="PHASE")
    phases.required = True
    common = [_common_options()]

    write = phases.add_parser("write", parents=common, help="write the reference file N times")
    write.add_argument("--src", required=True, metavar="LOCAL_REF_FILE")
    write.add_argument("--dst", required=True, metavar="ROOT", help="client c writes ROOT/NID/c")
    write.add_argument("--on-existing", choices=ON_EXISTING, default="replace")

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
    verify_write.add_argument(
        "--home",
        metavar="ALLUXIO_HOME",
        help="check by `ALLUXIO_HOME/bin/alluxio fs checksum` (MD5)",
    )

    verify_read = phases.add_parser(
        "verify-read", parents=common, help="check LOCAL_DIR/c against the reference"
    )
    verify_read.add_argument("--src", required=True, metavar="LOCAL_REF_FILE")
    verify_read.add_argument("--dst", required=True, metavar="LOCAL_DIR")

    cleaner = phases.add_parser(
        "clean", parents=common, help="delete ROOT/NID in storage and LOCAL_DIR/<cid> copies"
    )
    cleaner.add_argument("--dst", required=True, metavar="ROOT")
    cleaner.add_argument("--local-dst", required=True, metavar="LOCAL_DIR")
    return parser


def _identity(
    args: argparse.Namespace, host: str, cid: int, path: str, local: Optional[str] = None
) -> Identity:
    return Identity(args.run_id, args.phase, args.node, cid, host, args.backend, path, local)


def _write_jobs(args: argparse.Namespace, host: str) -> Work:
    storage = StorageConfig.from_args(args)
    return [
        WriteJob(
            _identity(args, host, cid, write_target(args.dst, args.node, cid)),
            storage,
            args.src,
            args.chunk_size,
            args.on_existing,
        )
        for cid in range(args.nfile)
    ]


def _read_jobs(args: argparse.Namespace, host: str) -> Work:
    storage = StorageConfig.from_args(args)
    sources = expand_sources(args.src, args.nfile)
    local_dir = os.path.abspath(args.dst)
    return [
        ReadJob(
            _identity(args, host, cid, source, os.path.join(local_dir, str(cid))),
            storage,
            args.chunk_size,
        )
        for cid, source in enumerate(sources)
    ]


def _verify_jobs(args: argparse.Namespace, host: str) -> Work:
    if args.phase == "verify-write":
        storage = StorageConfig.from_args(args)
        home = args.home
        identities = [
            _identity(args, host, cid, write_target(args.dst, args.node, cid))
            for cid in range(args.nfile)
        ]
    else:  # the copies are local files: check them through a posix view of "/"
        storage = StorageConfig(backend="posix", root="/")
        home = None
        local_dir = os.path.abspath(args.dst)
        copies = [os.path.join(local_dir, str(cid)) for cid in range(args.nfile)]
        identities = [_identity(args, host, cid, copy, copy) for cid, copy in enumerate(copies)]
    algorithm = "sha256" if home is None else "md5"
    try:
        reference = Reference.of(args.src, algorithm, args.chunk_size)
    except OSError as exc:
        cause = f"reference file {args.src}: {describe_error(exc)}"
        return [
            identity.failure(cause, method="stream" if home is None else "fs-checksum")
            for identity in identities
        ]
    return [
        VerifyJob(identity, storage, reference, args.chunk_size, home, args.timeout)
        for identity in identities
    ]


BUILDERS = {
    "write": _write_jobs,
    "read": _read_jobs,
    "verify-write": _verify_jobs,
    "verify-read": _verify_jobs,
}
assert set(BUILDERS) == set(PHASES)


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not NODE_ID.fullmatch(args.node):  # it becomes a path segment: {dst}/{node}/{cid}
        parser.error(f"--node must be a plain path segment ([A-Za-z0-9._-]), got {args.node!r}")
    if args.backend == "posix" and not args.root and args.phase != "verify-read":
        parser.error("--backend posix needs --root DIR")
    if args.phase == "read":
        try:
            expand_sources(args.src, args.nfile)
        except ValueError as exc:
            parser.error(str(exc))


def _show(result: ClientResult) -> None:
    print(progress_line(result), flush=True)
    if not result.ok:
        print(
            f"parbench worker: {result.phase} {result.node}/{result.client} {result.status}: "
            f"{result.error}",
            file=sys.stderr,
            flush=True,
        )


def _clean(args: argparse.Namespace) -> int:
    host = socket.gethostname()
    try:
        with make_storage(StorageConfig.from_args(args)) as storage:
            for line in clean(storage, args.dst, args.node, args.local_dst, args.nfile):
                print(f"clean {line}")
    except (UnsafePath, StorageError, OSError) as exc:
        print(f"parbench worker: {host}: clean: {describe_error(exc)}", file=sys.stderr)
        return 1
    return 0


def _progress(phase: str, node: str):
    began = time.monotonic()

    def show(done: int, total: int) -> None:
        print(
            f"{phase} {node}: {done}/{total} clients done after {time.monotonic() - began:.0f} s",
            flush=True,
        )

    return show


def _common_start(args: argparse.Namespace) -> Callable[[], Optional[float]]:
    """When the clients, once all ready, start: a given time, the controller's, or at once."""
    if args.start_on_stdin:
        # the controller answers every ready node; without a deadline, wait a phase long
        until = args.deadline if args.deadline is not None else time.time() + START_WAIT
        return lambda: ask_controller(args.node, until - time.time())
    return lambda: args.start_at


def _max_running(args: argparse.Namespace) -> Optional[int]:
    """``fs checksum`` starts a JVM per file: at most one per core at a time."""
    if args.phase == "verify-write" and args.home:
        return os.cpu_count() or 1
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_usage(parser, args)
    if args.phase == "clean":
        return _clean(args)
    out = args.out or f"parbench-{args.phase}.jsonl"
    work = BUILDERS[args.phase](args, socket.gethostname())
    if args.start_at is not None and args.start_at < time.time():
        print(
            f"parbench worker: --start-at is {time.time() - args.start_at:.1f} s in the past;"
            " starting at once",
            file=sys.stderr,
        )
    jobs = [item for item in work if isinstance(item, Job)]
    if jobs:
        try:
            results = run_clients(
                jobs,
                on_result=_show,
                deadline=args.deadline,
                on_progress=_progress(args.phase, args.node),
                start=_common_start(args),
                max_running=_max_running(args),
            )
        except KeyboardInterrupt:
            print("parbench worker: interrupted, no records saved", file=sys.stderr)
            return 130
    else:
        results = [item for item in work if isinstance(item, ClientResult)]
        for result in results:
            _show(result)
    try:
        write_file(results, out)
    except OSError as exc:
        print(
            f"parbench worker: {socket.gethostname()}: cannot save records to {out}: "
            f"{describe_error(exc)}",
            file=sys.stderr,
        )
        return EXIT_NOT_SAVED
    print(summary_line(args.phase, args.node, results, out), flush=True)
    return 0 if results and all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
