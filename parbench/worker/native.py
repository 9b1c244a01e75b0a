"""The native backend's write and read: Alluxio's own StressClientIOBench, one JVM per node.

``{alluxio_home}/bin/alluxio runClass alluxio.stress.cli.client.StressClientIOBench`` is
run as a person would run it, with ``--threads`` and ``--clients`` = the node's clients
and ``--file-size`` = the reference file's size. Its files are
``{dst}/{node}/native/{node}/data-{thread}`` (``--base {dst}/{node}/native --id {node}``):
a write makes one per thread (StressBench deletes and remakes its base first), a read
(``ReadArray``) reads each thread's own file over and over for a time (StressBench reads
for ``--duration``, never a count of files). Its clients start at ``--start-ms``: the
run's common start plus :data:`LEAD` seconds (the same on every node), since the JVM is
started only once the common start is known and needs seconds to set up.

What it gives is per node: bytes moved, its first start and last end, errors. The node's
one record carries those (``client`` 0, ``files``: whole files moved); no per-file latency,
per-client figures or time series (StressBench measures none), no content tag. Stdlib only.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from .clients import Identity, Job, WaitForStart, no_wait
from .protocol import StorageConfig
from .results import ClientResult, one_line
from .storage import describe_error

MAIN_CLASS = "alluxio.stress.cli.client.StressClientIOBench"
#: seconds from the common start to StressBench's ``--start-ms``: the JVM starts once the
#: common start is known and must have its clients set up by then (StressBench's own
#: default is 10 s after it starts; a thread that misses it fails "missed barrier")
LEAD = 10.0
#: seconds a native read lasts when the run gives no duration (StressBench reads for a time)
READ_SECONDS = 10.0
#: parbench phase -> StressBench --operation
OPERATIONS = {"write": "Write", "read": "ReadArray"}
#: what the record of a native phase cannot hold (StressBench does not measure it)
NOT_MEASURED = "per-file latency, per-client throughput, time series, content tags"


class NativeError(Exception):
    """StressBench did not run or said nothing usable; the message is one line."""


@dataclass(frozen=True)
class NativeRun:
    """What StressBench is asked: one phase of one node."""

    alluxio_home: str
    node: str
    phase: str  # write or read
    dst: str  # the run's storage root
    threads: int
    file_size: int  # bytes
    buffer_size: int  # bytes
    write_type: str
    read_type: str
    start_ms: int  # epoch milliseconds (node clock)
    duration: Optional[float] = None  # read: seconds

    @property
    def base(self) -> str:
        return posixpath.join(self.dst, self.node, "native")

    def files(self) -> List[str]:
        """The storage paths StressBench uses, one per thread."""
        return [posixpath.join(self.base, self.node, f"data-{t}") for t in range(self.threads)]

    def argv(self) -> List[str]:
        """``bin/alluxio runClass StressClientIOBench ...``; ``--in-process``: one JVM (it
        would otherwise start a second one through bin/alluxio for the same work)."""
        seconds = self.duration if self.duration is not None else READ_SECONDS
        argv = [
            posixpath.join(self.alluxio_home, "bin", "alluxio"),
            "runClass",
            MAIN_CLASS,
            "--operation",
            OPERATIONS[self.phase],
            "--base",
            f"alluxio://{self.base}",
            "--id",
            self.node,
            "--client-type",
            "AlluxioNative",
            "--threads",
            str(self.threads),
            "--clients",
            str(self.threads),
            "--file-size",
            str(self.file_size),
            "--buffer-size",
            str(min(self.buffer_size, self.file_size)),
            "--write-type",
            self.write_type,
            "--read-type",
            self.read_type,
            "--start-ms",
            str(self.start_ms),
            "--warmup",
            "0s",
            "--in-process",
        ]
        if self.phase == "read":
            argv += ["--duration", f"{int(seconds * 1000)}ms"]
        return argv


@dataclass(frozen=True)
class NativeResult:
    """StressBench's figures of one node (its summary JSON, ``nodeResults``)."""

    bytes: int
    start: float  # epoch seconds: recordStartMs
    end: float  # epoch seconds: endMs
    threads: int
    errors: Tuple[str, ...]


def parse_summary(text: str, node: str) -> NativeResult:
    """The figures of StressBench's summary JSON (its stdout) for task ``node``;
    NativeError saying what is missing."""
    start = text.find("{")
    try:
        data: Any = json.loads(text[start:]) if start >= 0 else None
    except ValueError as exc:
        raise NativeError(f"its output is not JSON ({exc})") from None
    if (
        not isinstance(data, dict)
        or data.get("className") != "alluxio.stress.client.ClientIOSummary"
    ):
        raise NativeError("its output is no ClientIOSummary JSON")
    task = (data.get("nodeResults") or {}).get(node)
    if not isinstance(task, dict):
        raise NativeError(f"its summary has no result for task {node!r}")
    counts = task.get("threadCountResults") or {}
    if len(counts) != 1:
        raise NativeError(f"its summary has {len(counts)} thread counts, expected 1")
    ((threads, figures),) = counts.items()
    try:
        io_bytes = int(figures["iobytes"])
        first, last = int(figures["recordStartMs"]), int(figures["endMs"])
        errors = tuple(str(e) for e in figures.get("errors") or ())
        errors += tuple(str(e) for e in task.get("errors") or () if str(e) not in errors)
        return NativeResult(io_bytes, first / 1000, last / 1000, int(threads), errors)
    except (KeyError, TypeError, ValueError) as exc:
        raise NativeError(f"its summary lacks a figure ({exc!r})") from None


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


class NativeJob(Job):
    """The node's StressBench run: one job standing for all its clients."""

    def __init__(
        self,
        identity: Identity,
        config: StorageConfig,
        dst: str,
        threads: int,
        file_size: int,
        buffer_size: int,
        duration: Optional[float],
        keep: Optional[str],
    ) -> None:
        self.identity = identity
        self.config = config
        self.dst = dst
        self.threads = threads
        self.file_size = file_size
        self.buffer_size = buffer_size
        self.duration = duration
        self.keep = keep  # where StressBench's JSON and stderr are kept (a file prefix)

    def run_for(self, start_ms: int) -> NativeRun:
        assert self.config.alluxio_home is not None
        return NativeRun(
            self.config.alluxio_home,
            self.identity.node,
            self.identity.phase,
            self.dst,
            self.threads,
            self.file_size,
            self.buffer_size,
            self.config.write_type,
            self.config.read_type,
            start_ms,
            self.duration,
        )

    def __call__(self, wait_for_start: WaitForStart = no_wait) -> ClientResult:
        fields: dict = {"ready": time.time(), "files": 0, "latency": None, "series": None}
        fields["threads"] = self.threads
        try:
            at = wait_for_start()
        except Exception as exc:  # no common start: nothing was run
            return self.identity.failure(describe_error(exc), **fields)
        run = self.run_for(int(((at if at is not None else time.time()) + LEAD) * 1000))
        argv = run.argv()
        command = " ".join(shlex.quote(a) for a in argv)
        try:  # a stop (SIGTERM to this client's group) ends the JVM too
            proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except OSError as exc:
            return self.identity.failure(f"{command}: cannot run: {exc.strerror or exc}", **fields)
        except Exception as exc:  # stopped: by the deadline, the controller, a signal
            return self.identity.failure(f"{command}: {describe_error(exc)}", **fields)
        self._keep(proc.stdout, proc.stderr)
        if proc.returncode != 0:
            cause = f"{command}: exited {proc.returncode}: {last_line(proc.stderr)}"
            return self.identity.failure(one_line(cause), **fields)
        try:
            found = parse_summary(proc.stdout, self.identity.node)
        except NativeError as exc:
            cause = f"{command}: {exc}; stderr: {last_line(proc.stderr)}"
            return self.identity.failure(one_line(cause), **fields)
        fields["threads"] = found.threads
        moved = dict(bytes=found.bytes, start=found.start, end=found.end, **fields)
        if self.identity.phase == "write":
            moved["files"] = found.threads if not found.errors else 0
        else:  # ReadArray reads its file to the end, then again: whole files read
            moved["files"] = found.bytes // self.file_size if self.file_size else 0
        if found.errors:
            cause = f"StressClientIOBench: {len(found.errors)} error(s): {found.errors[0]}"
            return self.identity.failure(one_line(cause), **moved)
        return self.identity.record(**moved)

    def _keep(self, stdout: str, stderr: str) -> None:
        """StressBench's JSON and its log next to the records, for a person (best effort)."""
        if self.keep is None:
            return
        try:
            os.makedirs(os.path.dirname(self.keep), exist_ok=True)
            with open(self.keep + ".json", "w", encoding="utf-8") as out:
                out.write(stdout)
            with open(self.keep + ".stderr", "w", encoding="utf-8") as err:
                err.write(stderr)
        except OSError:
            pass
