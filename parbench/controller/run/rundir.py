"""The folder of one run on the controller: ``results/<run-id>/``.

::

    run.json                       the sealed run (controller/run/run.py), written once
    plan.json                      who writes and reads what (verify takes the plan of
                                   the read that ran from it: data, not only for people)
    hosts.json                     what the pushes of the latest command that pushed
                                   measured on each node (`fab report --collect` takes
                                   the clock offsets from it)
    summary.json                   per phase: aggregate and per-node statistics
    failures.json                  per phase: nodes whose step failed, and why
    cluster.json                   the storage's version as each node's proxy told it
    <phase>.svg                    per-client throughput, for a person
    nodes/<node>/<phase>.jsonl     client records fetched from the node
    nodes/<node>/<phase>.log       what the worker printed there
    nodes/<node>/<phase>.request.json   the request the node was sent

Every JSON document carries a ``schema`` and is checked on load. Writes are atomic (a
temporary file of its own, then a rename) and read-modify-write updates hold the run's
lock file, so two processes updating one run never lose or corrupt each other's work. A
document this process wrote is read back from memory while the file is still the one it
wrote: a command does not re-read what it saved.
``results/latest`` links to the newest run that measured something (records of a timed
phase): a run whose push, lock or every node failed leaves it where it was, so
``fab compare previous latest`` and later commands find runs with figures.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from parbench.worker.protocol import TIMED_PHASES
from parbench.worker.results import ClientResult, read_lines

from .natural import natural_key


class RunNotFound(LookupError):
    pass


class ResultsError(RuntimeError):
    """A file of the run cannot be read or is not what it should be; the message names it."""


#: a run id (or ``latest``) is one folder of results/, never a path
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: the versioned documents of a run folder and their schemas
SCHEMAS = {
    "run.json": "parbench.run/1",
    "plan.json": "parbench.plan/1",
    "hosts.json": "parbench.hosts/1",
    "summary.json": "parbench.summary/1",
    "failures.json": "parbench.failures/1",
    "check.json": "parbench.check/1",
    "cluster.json": "parbench.cluster/1",
}


@dataclass(frozen=True)
class NodeFailure:
    """A node whose step failed, and why: one entry of failures.json."""

    node: str
    host: str  # user@host:port
    step: str
    cause: str

    def to_dict(self) -> dict:
        return {"node": self.node, "host": self.host, "step": self.step, "cause": self.cause}


def write_atomically(path: Path, text: str) -> os.stat_result:
    """Write ``text`` to ``path`` through a temporary file of its own and a rename, so a
    reader or a crash never sees half a file and two writers never share a temporary.
    Returns the written file's status (taken before the rename: it is this text's)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)
        written = os.stat(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def _identity(status: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from another (a rename makes a new inode)."""
    return status.st_ino, status.st_mtime_ns, status.st_size


def _point_latest(root: Path, run_id: str) -> None:
    """``root/latest`` names ``run_id``, switched atomically."""
    tmp = root / f".latest-{run_id}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_id)
    os.replace(tmp, root / "latest")


def latest_id(root: Path) -> str | None:
    """The run ``root/latest`` names now, if any."""
    link = root / "latest"
    return os.readlink(link) if link.is_symlink() else None


def measured(folder: Path) -> bool:
    """Whether the run folder holds records of a timed phase."""
    for phase in TIMED_PHASES:
        for path in folder.glob(f"nodes/*/{phase}.jsonl"):
            with suppress(OSError):
                if path.stat().st_size > 0:
                    return True
    return False


def run_ids(root: Path, only_measured: bool = False) -> list[str]:
    """The run folders under ``root`` (with a run.json; ``only_measured``: that measured
    something), oldest first: run ids sort by their start time."""
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if _RUN_ID.fullmatch(p.name)
        and not p.is_symlink()
        and (p / "run.json").is_file()
        and (not only_measured or measured(p))
    )


def no_latest(root: Path) -> str:
    """Why ``latest`` names no run under ``root``, and what to do, for a message."""
    target = latest_id(root)
    newest = (run_ids(root, only_measured=True) or run_ids(root) or [None])[-1]
    if target is not None:
        said = f"{root}/latest points to run {target!r}, which is missing"
    else:
        said = f"no run under {root}/ has measured anything yet"
    if newest is None:
        return f"{said}: run `fab write` first"
    return f"{said}; the newest run there is {newest}: pass --run {newest}, or run `fab write`"


def _started(run_id: str) -> str:
    """When a run began, as its id says (``20261125T104212Z`` of ``...-51bb``): two runs
    of one second are as new as each other."""
    return run_id.split("-", 1)[0]


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


@dataclass(frozen=True)
class RunDir:
    root: Path  # results/
    run_id: str
    #: document name -> the text this process last wrote there and that file's identity:
    #: read back from memory while the file is still that one (no other process
    #: replaced it), so a command does not re-read what it wrote
    written: dict[str, tuple[str, tuple[int, int, int]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def path(self) -> Path:
        return self.root / self.run_id

    @classmethod
    def create(cls, root: Path, run_id: str) -> RunDir:
        """A new run folder; ``latest`` moves to it once it measured something
        (:meth:`note_measured`)."""
        run = cls(root, run_id)
        run.path.mkdir(parents=True, exist_ok=False)
        return run

    def measured(self) -> bool:
        """Whether this run holds records of a timed phase."""
        return measured(self.path)

    def sent(self) -> bool:
        """Whether a request of this run was sent to a node (it may hold records)."""
        return any(self.path.glob("nodes/*/*.request.json"))

    def note_measured(self) -> None:
        """When this run measured something, ``latest`` names it, unless it names a
        newer run that still exists (an older run was continued with --run)."""
        if not self.measured():
            return
        current = latest_id(self.root)
        newer = current is not None and _started(current) > _started(self.run_id)
        if not (newer and (self.root / str(current)).is_dir()):
            _point_latest(self.root, self.run_id)

    def discard(self, previous: str | None) -> None:
        """Remove this run (refused before it did anything); if ``latest`` names it,
        it goes back to ``previous`` (the run it named before, if any)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if latest_id(self.root) != self.run_id:
            return
        if previous is not None:
            _point_latest(self.root, previous)
        else:
            (self.root / "latest").unlink(missing_ok=True)

    @classmethod
    def open(cls, root: Path, run_id: str = "latest") -> RunDir:
        """An existing run, by id or ``latest``."""
        if not _RUN_ID.fullmatch(run_id):
            raise RunNotFound(f"--run must be a run id like 20261125T104212Z-51bb, got {run_id!r}")
        path = root / run_id
        if not path.is_dir():
            if run_id == "latest":
                raise RunNotFound(no_latest(root))
            raise RunNotFound(f"no run {run_id!r} under {root}/: see {root}/")
        return cls(root, path.resolve().name)

    # --- files of the nodes ----------------------------------------------------------

    def node_file(self, node: str, name: str) -> Path:
        folder = self.path / "nodes" / node
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def records(self, phase: str, damaged: list[str] | None = None) -> list[ClientResult]:
        """Every client record of ``phase`` fetched so far, all nodes; ResultsError at a
        damaged one (with ``damaged``: left out, its file:line and why appended there).
        A torn last line of a file (a save cut short) is left out either way, and named
        in ``damaged``."""
        return list(self._iter_records(phase, damaged))

    def node_records(
        self, node: str, phase: str, damaged: list[str] | None = None
    ) -> list[ClientResult]:
        """The records of ``phase`` fetched from ``node`` so far (none: empty); damaged
        ones as :meth:`records` says."""
        path = self.path / "nodes" / node / f"{phase}.jsonl"
        return list(_read_records(path, damaged)) if path.exists() else []

    def _iter_records(self, phase: str, damaged: list[str] | None = None) -> Iterator[ClientResult]:
        found = self.path.glob(f"nodes/*/{phase}.jsonl")
        for path in sorted(found, key=lambda p: natural_key(p.parent.name)):  # n2 before n10
            yield from _read_records(path, damaged)

    def forget(self, phase: str) -> None:
        """Drop what an earlier attempt of ``phase`` left (records, log, the request sent,
        so that nothing of it is collected later), before it runs again."""
        for suffix in ("jsonl", "log", "request.json"):
            for path in self.path.glob(f"nodes/*/{phase}.{suffix}"):
                path.unlink()

    # --- versioned documents ---------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run folder's lock (other processes updating this run wait)."""
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read_doc(self, name: str, default: Any = None) -> Any:
        """The document ``name`` without its schema field; ``default`` if it is absent.
        ResultsError when it is not JSON or not of the expected schema."""
        path = self.path / name
        try:
            data = json.loads(self._known(name) or path.read_text())
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            raise ResultsError(f"cannot read {path}: {exc}") from None
        found = data.get("schema") if isinstance(data, dict) else None
        if found != SCHEMAS[name]:
            raise ResultsError(f"{path}: schema {found!r}, expected {SCHEMAS[name]!r}")
        return {k: v for k, v in data.items() if k != "schema"}

    def _known(self, name: str) -> str | None:
        """The text of document ``name`` as this process wrote it, if the file is still
        that one (None: read it)."""
        kept = self.written.get(name)
        if kept is None:
            return None
        try:
            return kept[0] if _identity((self.path / name).stat()) == kept[1] else None
        except OSError:
            return None

    def write_doc(self, name: str, data: dict) -> Path:
        path = self.path / name
        text = _dumps({**data, "schema": SCHEMAS[name]})
        self.written[name] = (text, _identity(write_atomically(path, text)))
        return path

    def update_doc(self, name: str, values: dict, drop: Iterable[str] = ()) -> Path:
        """Set some top-level keys of a document (e.g. one phase of summary.json), and
        remove those of ``drop``, under the run's lock."""
        with self.locked():
            data = self.read_doc(name, {})
            data.update(values)
            for key in drop:
                data.pop(key, None)
            return self.write_doc(name, data)

    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        write_atomically(path, text)
        return path


def _read_records(path: Path, damaged: list[str] | None = None) -> Iterator[ClientResult]:
    try:
        with open(path) as stream:
            yield from read_lines(_whole_lines(stream, path, damaged), str(path), damaged)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read the records {path}: {exc}") from exc


def _whole_lines(stream: Iterator[str], path: Path, damaged: list[str] | None) -> Iterator[str]:
    """The lines of a records file but a torn last one: every save ends its lines with a
    newline, so a last line without one that is not a record was cut short as the
    controller stopped while appending it (outcomes.append_records). It is left out
    (not lost: its iteration's records are still on the node), and named in ``damaged``."""
    for number, line in enumerate(stream, 1):
        if line.endswith("\n") or not line.strip() or _a_record(line):
            yield line
        elif damaged is not None:
            damaged.append(
                f"{path}:{number}: torn last line (the controller stopped while saving it): "
                "`fab report --collect` fetches its iteration again from the node"
            )


def _a_record(line: str) -> bool:
    try:
        ClientResult.from_dict(json.loads(line))
    except (ValueError, TypeError):
        return False
    return True
