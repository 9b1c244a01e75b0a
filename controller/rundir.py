"""The folder of one run on the controller: ``results/<run-id>/``.

::

    manifest.json            inventory snapshot, reference checksum, versions, hosts
    plan.json                what each node writes and reads (the pairing)
    <node>/<phase>.jsonl     client records fetched from the node
    <node>/<phase>.log       what the worker printed there
    summary.json             per phase: aggregate and per-node statistics, node failures
    <phase>.svg              per-client throughput, for a person
    failures.json            per phase: nodes whose step failed, and why

``results/latest`` links to the newest run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from worker.results import ClientResult, read_lines


class RunNotFound(LookupError):
    pass


#: a run id (or ``latest``) is one folder of results/, never a path
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ResultsError(RuntimeError):
    """A records file of the run cannot be read; the message names it."""


def _write_json(path: Path, data: Any) -> None:
    """Write atomically, so that a crash never leaves half a JSON file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class RunDir:
    root: Path  # results/
    run_id: str

    @property
    def path(self) -> Path:
        return self.root / self.run_id

    @classmethod
    def create(cls, root: Path, run_id: str) -> RunDir:
        run = cls(root, run_id)
        run.path.mkdir(parents=True, exist_ok=False)
        latest = root / "latest"
        tmp = root / f".latest-{run_id}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_id)
        os.replace(tmp, latest)
        return run

    @classmethod
    def open(cls, root: Path, run_id: str = "latest") -> RunDir:
        """An existing run, by id or ``latest``."""
        if not _RUN_ID.fullmatch(run_id):
            raise RunNotFound(f"--run must be a run id like 20261125T104212Z-51bb, got {run_id!r}")
        path = root / run_id
        if not path.is_dir():
            hint = "run `fab write` first" if run_id == "latest" else f"see {root}/"
            raise RunNotFound(f"no run {run_id!r} under {root}/: {hint}")
        return cls(root, path.resolve().name)

    def node_file(self, node: str, name: str) -> Path:
        folder = self.path / node
        folder.mkdir(exist_ok=True)
        return folder / name

    def records(self, phase: str) -> list[ClientResult]:
        """Every client record of ``phase`` fetched so far, all nodes."""
        return list(self._iter_records(phase))

    def _iter_records(self, phase: str) -> Iterator[ClientResult]:
        for path in sorted(self.path.glob(f"*/{phase}.jsonl")):
            try:
                with open(path) as stream:
                    yield from read_lines(stream, str(path))
            except (OSError, ValueError) as exc:
                raise ResultsError(f"cannot read the records {path}: {exc}") from exc

    def forget(self, phase: str) -> None:
        """Drop the records of ``phase`` gathered earlier, before it runs again."""
        for path in self.path.glob(f"*/{phase}.jsonl"):
            path.unlink()

    def read_json(self, name: str, default: Any = None) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return default

    def write_json(self, name: str, data: Any) -> Path:
        path = self.path / name
        _write_json(path, data)
        return path

    def update_json(self, name: str, key: str, value: Any) -> Path:
        """Set one top-level key of a JSON object file (e.g. one phase of summary.json)."""
        data = self.read_json(name, {})
        data[key] = value
        return self.write_json(name, data)

    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        path.write_text(text)
        return path
