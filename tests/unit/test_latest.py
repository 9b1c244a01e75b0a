"""Which runs ``latest`` and ``previous`` name: the newest that measured something. A run
whose push failed or that was refused (a lock held, a bad sweep point) never takes
their place; a chained command still continues the run it started."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parbench.controller import commands, phases
from parbench.controller.analysis.compare import compare_runs, resolve
from parbench.controller.nodes import locks, remote
from parbench.controller.nodes.fleet import Fleet, current, using
from parbench.controller.nodes.locks import LockHeld
from parbench.controller.output import htmlreport
from parbench.controller.phases import BenchFailure
from parbench.controller.run import run as run_module
from parbench.controller.run.inventory import load
from parbench.controller.run.reference import PushError
from parbench.controller.run.rundir import RunNotFound, latest_id

from .test_orchestration import INVENTORY, FakeConnection, World


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    """Nodes that run what they are sent (test_orchestration's), pushed and locked."""
    world = World()
    monkeypatch.setattr(remote, "connect", lambda inventory, node: FakeConnection(world, node.id))
    monkeypatch.setattr(phases, "push", lambda inventory, *args, **kwargs: inventory.nodes)
    monkeypatch.setattr(locks, "hold", lambda inventory, run_id, nodes: None)
    return world


@pytest.fixture
def inventory(tmp_path: Path):
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ids = iter(range(1, 100))  # runs a second apart, as they are in use
    monkeypatch.setattr(run_module, "new_run_id", lambda: f"20260101T0000{next(ids):02d}Z-0000")
    return tmp_path / "results"


def _measured_run(inventory, root: Path) -> str:
    with using(Fleet()):  # a `fab write` of its own
        run = current().runs.start(inventory, root)
        commands.write(run)
    return run.run_id


def _failed_push(*args, **kwargs):
    raise BenchFailure("no node could be prepared")


def test_a_failed_push_leaves_latest_and_previous_on_the_runs_that_measured(
    world, inventory, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _measured_run(inventory, root), _measured_run(inventory, root)
    assert latest_id(root) == second
    monkeypatch.setattr(phases, "push", _failed_push)
    failed = current().runs.start(inventory, root)
    with pytest.raises(BenchFailure):
        commands.write(failed)
    assert failed.path.is_dir() and latest_id(root) == second
    assert (resolve(root, "previous"), resolve(root, "latest")) == (first, second)
    a, b, changes = compare_runs(root, "previous", "latest")
    assert (a, b) == (first, second) and changes
    # the chain goes on with the run it started; a later command with the newest measured
    assert current().runs.current(lambda: inventory, root) is failed
    with using(Fleet()):  # the next `fab` command
        assert current().runs.current(lambda: inventory, root).run_id == second


def test_previous_skips_a_run_that_measured_nothing_even_when_latest_names_it(
    world, inventory, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results folder of an earlier parbench, whose latest moved when a run began."""
    first, second = _measured_run(inventory, root), _measured_run(inventory, root)
    monkeypatch.setattr(phases, "push", _failed_push)
    failed = current().runs.start(inventory, root)
    with pytest.raises(BenchFailure):
        commands.write(failed)
    (root / "latest").unlink()
    (root / "latest").symlink_to(failed.run_id)
    assert (resolve(root, "previous"), resolve(root, "latest")) == (first, second)


def test_a_dangling_latest_names_the_missing_run_and_the_newest_left(
    world, inventory, root: Path
) -> None:
    first, second = _measured_run(inventory, root), _measured_run(inventory, root)
    shutil.rmtree(root / second)
    message = (
        f"{root}/latest points to run '{second}', which is missing; the newest run there "
        f"is {first}: pass --run {first}, or run `fab write`"
    )
    with pytest.raises(RunNotFound) as info:
        current().runs.current(lambda: inventory, root)
    assert str(info.value) == message
    with pytest.raises(RunNotFound) as info:
        resolve(root, "latest")
    assert str(info.value) == message
    shutil.rmtree(root / first)
    with pytest.raises(RunNotFound, match="which is missing: run `fab write` first"):
        current().runs.current(lambda: inventory, root)


def test_runs_that_measured_nothing_are_named_when_no_run_measured(inventory, root: Path) -> None:
    with using(Fleet()):
        only = current().runs.start(inventory, root)
    with pytest.raises(RunNotFound, match=f"has measured anything yet; .* is {only.run_id}"):
        current().runs.current(lambda: inventory, root)


@pytest.mark.parametrize("refusal", ["lock", "push"])
def test_a_refused_sweep_point_leaves_no_run_folder_and_latest_unmoved(
    world, inventory, root: Path, monkeypatch: pytest.MonkeyPatch, refusal: str
) -> None:
    def hold(inv, run_id, nodes):
        if refusal == "lock" and inv.nodes[0].clients == 2:
            raise LockHeld("the workdir /w/n0/.parbench-lock (on n0) is locked by run x")

    pushed = phases.push

    def push(inv, run=None, data=True, held=None):
        if refusal == "push" and inv.nodes[0].clients == 2:
            raise PushError("nodes n0 and n1 are one workdir on one machine")
        return pushed(inv, run, data, held)

    monkeypatch.setattr(locks, "hold", hold)
    monkeypatch.setattr(phases, "push", push)
    monkeypatch.setattr(htmlreport, "write_sweep", lambda page, doc: page)
    with pytest.raises(BenchFailure, match="1 of 2 point"):
        commands.sweep(inventory, {"clients": ["1", "2"]}, ["write"], root, rounds=1, warmup=False)
    [kept] = [p.name for p in root.glob("2*") if (p / "run.json").is_file()]  # one run only
    assert latest_id(root) == kept
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [kept, "latest", "sweeps", "history.sqlite"]
    )
