"""Run history in SQLite: every finished phase's figures, its iterations' samples, the
run's labels, config hash and software versions, so that nights can be compared.

The database is one file (default ``results/history.sqlite``), in WAL mode with a busy
timeout so that two controllers recording at once wait for each other instead of
failing. Its schema is versioned with ``PRAGMA user_version`` and migrated forward on
open; a database newer than this parbench is refused. Recording is an upsert per run
and phase, from the run folder's own files (``run.json``, ``summary.json``), so it can
be repeated, and runs made before the history existed can be imported. A damaged or
locked database is a HistoryError with the file and the cause; the run's files are
never touched by it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from parbench.worker.protocol import PHASE_TABLE, TIMED_PHASES

from ..run.rundir import ResultsError, RunDir

#: seconds a writer waits for another one's transaction
BUSY_TIMEOUT = 30.0

#: each migration takes the schema from its index to the next version
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        recorded TEXT NOT NULL,
        controller TEXT,
        versions TEXT NOT NULL,
        cluster_version TEXT
    );
    CREATE TABLE labels (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE phases (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        config TEXT NOT NULL,
        valid INTEGER NOT NULL,
        invalid TEXT NOT NULL,
        clients INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        bytes INTEGER,
        wall_seconds REAL,
        aggregate REAL,
        first_done REAL,
        client_median REAL,
        p99_us REAL,
        ops_per_s REAL,
        latency TEXT NOT NULL,
        PRIMARY KEY (run_id, phase)
    );
    CREATE INDEX phases_by_config ON phases (config_hash, phase);
    CREATE TABLE samples (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        phase TEXT NOT NULL,
        iteration INTEGER NOT NULL,
        warmup INTEGER NOT NULL,
        aggregate REAL NOT NULL,
        PRIMARY KEY (run_id, phase, iteration)
    );
    """,
    # 2: whole files moved, for files/s (NULL for phases recorded before)
    "ALTER TABLE phases ADD COLUMN files INTEGER",
    # 3: a phase too short for its figures (controller/analysis/adequacy.py)
    "ALTER TABLE phases ADD COLUMN short INTEGER NOT NULL DEFAULT 0",
)
SCHEMA_VERSION = len(MIGRATIONS)
#: the operation whose p99 latency stands for a phase
HEADLINE_OP = {p.name: p.headline_op for p in PHASE_TABLE if p.timed}


class HistoryError(RuntimeError):
    """The history database cannot be used; the message names the file and why."""


class OptionError(ValueError):
    """An option of ``fab history`` or ``fab check`` that cannot be used; the message
    names it."""


def phase_option(phase: Optional[str]) -> Optional[str]:
    """``fab history --phase``: one of the phases the history keeps (a typo would only
    find no runs)."""
    if phase is not None and phase not in TIMED_PHASES:
        raise OptionError(
            f"--phase {phase}: expected one of {', '.join(TIMED_PHASES)}"
            " (the phases the history keeps)"
        )
    return phase


def min_effect_of(text: str) -> float:
    """``fab check --min-effect``: a fraction between 0 and 1 (``0.05``) or a percentage
    (``5%``); anything else (nan, 0, 50, ...) would switch the check off or make every
    change a regression, so it is refused."""
    number = text.strip()
    percent = number.endswith("%")
    try:
        value = float(number[:-1] if percent else number) / (100 if percent else 1)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # also false for nan
        raise OptionError(
            "--min-effect: expected a fraction between 0 and 1 (0.05 is 5 %) or a"
            f" percentage (5%), got {text!r}"
        )
    return value


@dataclass(frozen=True)
class Entry:
    """One phase of one run, as the history has it."""

    run_id: str
    created: str
    phase: str
    config_hash: str
    valid: bool
    aggregate: Optional[float]  # bytes/s (write, read)
    first_done: Optional[float]
    client_median: Optional[float]
    p99_us: Optional[float]
    ops_per_s: Optional[float]  # meta: all kinds
    labels: dict[str, str]
    samples: tuple[float, ...]  # measured iterations' aggregates
    cluster: Optional[str] = None  # the storage's version, e.g. "alluxio 2.9.6"
    short: bool = False  # too short for its figures (summary.json's "short")


class History:
    """The database at ``path``; use as a context manager or call close()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
            self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise HistoryError(_explain(path, exc)) from None
        except OSError as exc:
            raise HistoryError(f"history {path}: {exc.strerror or exc}") from None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise HistoryError(_explain(self.path, exc)) from None

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"history {self.path}: schema version {version} is newer than this"
                    f" parbench's ({SCHEMA_VERSION}); use a newer parbench or another file"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def record(self, run: RunDir) -> list[str]:
        """Record (again) the measured phases of ``run``; returns their names."""
        sealed = run.read_doc("run.json")
        if sealed is None:
            raise ResultsError(f"{run.path}/run.json is missing: not a run to record")
        cluster_version = (run.read_doc("cluster.json") or {}).get("version")
        summary = run.read_doc("summary.json", {})
        phases = [p for p in TIMED_PHASES if isinstance(summary.get(p), dict)]
        labels = {str(k): str(v) for k, v in (sealed.get("labels") or {}).items()}
        controller = (sealed.get("controller") or {}).get("hostname")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, created, recorded, controller, versions,"
                " cluster_version) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET"
                " recorded = excluded.recorded, cluster_version ="
                " COALESCE(excluded.cluster_version, runs.cluster_version)",
                (
                    run.run_id,
                    sealed.get("created", now),
                    now,
                    controller,
                    json.dumps(sealed.get("versions", {}), sort_keys=True),
                    cluster_version,
                ),
            )
            db.execute("DELETE FROM labels WHERE run_id = ?", (run.run_id,))
            db.executemany(
                "INSERT INTO labels (run_id, key, value) VALUES (?, ?, ?)",
                [(run.run_id, k, v) for k, v in labels.items()],
            )
            for phase in phases:
                self._phase(db, run.run_id, phase, summary[phase])
        return phases

    def _phase(self, db: sqlite3.Connection, run_id: str, phase: str, figures: dict) -> None:
        latency = figures.get("latency") or {}
        headline = latency.get(HEADLINE_OP[phase], {})
        first = figures.get("first_done") or {}
        ops = figures.get("ops") or {}
        db.execute(
            "INSERT OR REPLACE INTO phases (run_id, phase, config_hash, config, valid, invalid,"
            " clients, ok, errors, bytes, wall_seconds, aggregate, first_done, client_median,"
            " p99_us, ops_per_s, latency, files, short) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                phase,
                figures.get("config_hash", ""),
                json.dumps(figures.get("config", {}), sort_keys=True),
                int(bool(figures.get("valid", True))),
                json.dumps(list(figures.get("invalid", []))),
                figures.get("clients", 0),
                figures.get("ok", 0),
                len(figures.get("errors", [])),
                figures.get("bytes"),
                figures.get("wall_seconds"),
                figures.get("aggregate_throughput"),
                first.get("throughput"),
                (figures.get("per_client") or {}).get("median"),
                headline.get("p99"),
                _ops_rate(ops),
                json.dumps(latency, sort_keys=True),
                figures.get("files"),
                int(bool(figures.get("short"))),
            ),
        )
        db.execute("DELETE FROM samples WHERE run_id = ? AND phase = ?", (run_id, phase))
        iterations = figures.get("iterations") or {}
        rows = [
            (run_id, phase, i["iteration"], int(warm), i["aggregate_throughput"])
            for warm, key in ((True, "warmup"), (False, "measured"))
            for i in iterations.get(key, [])
        ]
        db.executemany(
            "INSERT INTO samples (run_id, phase, iteration, warmup, aggregate)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def entries(
        self,
        phase: Optional[str] = None,
        labels: Optional[dict[str, str]] = None,
        config_hash: Optional[str] = None,
        last: Optional[int] = None,
    ) -> list[Entry]:
        """Phases recorded, oldest first (the ``last`` N), filtered by phase, labels
        (every one must match) and config hash."""
        where, args = [], []
        if phase:
            where.append("p.phase = ?")
            args.append(phase)
        if config_hash:
            where.append("p.config_hash = ?")
            args.append(config_hash)
        for key, value in (labels or {}).items():
            where.append("EXISTS (SELECT 1 FROM labels l WHERE l.run_id = r.run_id"
                         " AND l.key = ? AND l.value = ?)")  # fmt: skip
            args += [key, value]
        query = (
            "SELECT r.run_id, r.created, p.phase, p.config_hash, p.valid, p.aggregate,"
            " p.first_done, p.client_median, p.p99_us, p.ops_per_s, r.cluster_version, p.short"
            " FROM phases p JOIN runs r"
            " USING (run_id)"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.created DESC, r.rowid DESC, p.phase"
            + (" LIMIT ?" if last else "")
        )
        if last:
            args.append(last)
        try:
            rows = self.db.execute(query, args).fetchall()
            found = [self._entry(row) for row in reversed(rows)]
        except sqlite3.Error as exc:
            raise HistoryError(_explain(self.path, exc)) from None
        return found

    def phase_row(self, run_id: str, phase: str) -> dict[str, Any]:
        """Every column of the phases table for one run and phase ({} if not recorded)."""
        try:
            cursor = self.db.execute(
                "SELECT * FROM phases WHERE run_id = ? AND phase = ?", (run_id, phase)
            )
            row = cursor.fetchone()
        except sqlite3.Error as exc:
            raise HistoryError(_explain(self.path, exc)) from None
        return {} if row is None else dict(zip((d[0] for d in cursor.description), row))

    def _entry(self, row: Sequence[Any]) -> Entry:
        run_id, phase = row[0], row[2]
        labels = dict(
            self.db.execute("SELECT key, value FROM labels WHERE run_id = ?", (run_id,)).fetchall()
        )
        samples = tuple(
            v
            for (v,) in self.db.execute(
                "SELECT aggregate FROM samples WHERE run_id = ? AND phase = ? AND warmup = 0"
                " ORDER BY iteration",
                (run_id, phase),
            )
        )
        entry = Entry(
            run_id, row[1], phase, row[3], bool(row[4]), *row[5:10], labels, samples, row[10]
        )
        return replace(entry, short=bool(row[11]))


def _ops_rate(ops: dict) -> Optional[float]:
    """Operations per second over all kinds of a meta phase (None for others)."""
    if not ops:
        return None
    count = sum(op.get("count", 0) for op in ops.values())
    seconds = sum(op.get("seconds", 0.0) for op in ops.values())
    return count / seconds if seconds > 0 else None


def _explain(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        why = f"locked by another process for more than {BUSY_TIMEOUT:g} s ({text})"
    elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        why = "not an SQLite database (damaged?); move it away to start a new history"
    else:
        why = text
    return f"history {path}: {why}"


def import_runs(history: History, root: Path) -> tuple[list[str], list[str]]:
    """Record every run folder under ``root``; (recorded run ids, lines about skipped)."""
    done, skipped = [], []
    folders = (p for p in root.iterdir() if not p.is_symlink() and (p / "run.json").is_file())
    for folder in sorted(folders):
        try:
            if history.record(RunDir.open(root, folder.name)):
                done.append(folder.name)
        except ResultsError as exc:
            skipped.append(f"{folder.name}: {exc}")
    return done, skipped


#: where the history is, when configured (``bench.history``); else beside the runs
_CONFIGURED: list[Path] = []


def configure(path: Optional[str | Path]) -> None:
    """Use the database at ``path`` (None: ``<results>/history.sqlite``)."""
    _CONFIGURED[:] = [Path(path)] if path else []


def location(root: Path) -> Path:
    return _CONFIGURED[0] if _CONFIGURED else root / "history.sqlite"


def remember(run: RunDir) -> Optional[str]:
    """Record ``run`` in the history; a line saying why not when it cannot be (the run's
    own files are untouched either way)."""
    try:
        with History(location(run.root)) as history:
            history.record(run)
    except (HistoryError, ResultsError) as exc:
        return f"not recorded in the history: {exc}"
    return None
