"""Which run a task works on.

``fab write`` starts (seals) a run; tasks chained after it in the same ``fab`` command
continue it; a later ``fab read`` or ``fab verify`` continues ``results/latest`` (the
newest run that measured something, controller/run/rundir.py) or ``--run ID``, checked
against today's inventory (controller/run/run.py).

The runs a command started or continued are part of that command's state: a
:class:`Runs` kept in its fleet (controller/nodes/fleet.py, ``Fleet.runs``) with its
connections and locks, so two commands in one process never continue each other's run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from . import say
from .inventory import Inventory
from .run import Run
from .rundir import RunNotFound


class Runs:
    """The runs one ``fab`` command started or opened, per results root: what its
    chained tasks continue."""

    def __init__(self) -> None:
        self._active: dict[Path, Run] = {}

    def start(
        self, inventory: Inventory, root: Path, labels: Optional[dict[str, str]] = None
    ) -> Run:
        run = Run.start(inventory, root, labels)
        self._active[root.resolve()] = run
        say.out(f"run {run.run_id}: results in {run.path}/")
        return run

    def active(self, root: Path) -> Optional[Run]:
        """The run this ``fab`` command started or continued, if any."""
        return self._active.get(root.resolve())

    def discard(self, run: Run, previous: Optional[str]) -> None:
        """Forget a run that was refused before anything ran (its locks were taken): its
        folder goes and ``latest`` names ``previous`` again."""
        self._active.pop(run.dir.root.resolve(), None)
        run.dir.discard(previous)
        say.out(f"run {run.run_id}: discarded, nothing ran")

    def current(
        self,
        inventory: Callable[[], Optional[Inventory]],
        root: Path,
        run_id: Optional[str] = None,
        configured: Optional[str] = None,
        create: bool = False,
    ) -> Run:
        """The run named by ``--run``, else the one this ``fab`` command started, else
        the configured one (``bench.run``), else the latest.

        A configured run never takes over from a chained ``fab write read verify``: that
        reads and checks what its own write produced. An existing run is reconciled with
        ``inventory()`` (None: the run's own settings, ``--from-run``). With no run at
        all, a new one when ``create`` (a same-file read needs no write before it), else
        RunNotFound saying to run ``fab write`` first.
        """
        key = root.resolve()
        if not run_id and key in self._active:
            return self._active[key]
        try:
            run = Run.open(root, run_id or configured or "latest")
        except RunNotFound:
            if create and not (run_id or configured):
                today = inventory()
                if today is None:
                    raise
                return self.start(today, root)
            raise
        run = run.reconciled(inventory())
        self._active[key] = run
        say.out(f"run {run.run_id}: continuing, results in {run.path}/")
        return run
