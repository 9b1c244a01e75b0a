"""parbench: parallel write / read / verify against an Alluxio cluster, over SSH.

    fab write read verify                      one run, chained
    fab read --mode same --src /parbench/n0/0  every client reads one file
    fab verify --run 20261125T103200Z-1a2b     check an earlier run again
    FABRIC_BENCH_INVENTORY=other.yaml fab write read verify

The inventory comes from ``--inventory``, else the config key ``bench.inventory``
(``fabric.yaml``, ``FABRIC_BENCH_INVENTORY``, ``fab -f config.yaml``), else
``inventory.yaml``. Exit codes: 0 all good, 1 the benchmark found failures (a node, a
client or a file), 2 bad input (inventory, options, missing data or run).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from fabric import task
from invoke import Collection, Context, Exit

from controller import phases, session
from controller.inventory import Inventory, InventoryError, load
from controller.pairing import PairingError
from controller.plan import PlanError, read_plan
from controller.push import PushError, RuntimeUnavailable
from controller.rundir import ResultsError, RunDir, RunNotFound

HERE = Path(__file__).resolve().parent
BAD_INPUT = (InventoryError, PlanError, PairingError, PushError, RunNotFound)


@contextmanager
def _exits() -> Iterator[None]:
    """Known failures become a message and an exit code, not a traceback."""
    try:
        yield
    except BAD_INPUT as exc:
        raise Exit(f"error: {exc}", code=2) from None
    except phases.BenchFailure as exc:
        raise Exit(f"failed: {exc}", code=exc.code) from None
    except (RuntimeUnavailable, ResultsError) as exc:
        raise Exit(f"failed: {exc}", code=1) from None


def _inventory(c: Context, inventory: Optional[str]) -> Inventory:
    return load(inventory or c.config.bench.inventory)


def _results(c: Context) -> Path:
    root = Path(c.config.bench.results)
    return root if root.is_absolute() else HERE / root


@task(help={"inventory": "inventory file (default: config bench.inventory)"})
def push(c, inventory=None):
    """Copy the worker, the reference data and its runtime to every node (what changed)."""
    with _exits():
        phases.push_all(_inventory(c, inventory))


@task(help={"inventory": "inventory file (default: config bench.inventory)"})
def write(c, inventory=None):
    """Start a run: client c of node n writes the reference file to {dst}/{n}/{c}."""
    with _exits():
        inv = _inventory(c, inventory)
        phases.write(inv, session.start(inv, _results(c)))


@task(
    help={
        "inventory": "inventory file (default: config bench.inventory)",
        "mode": "cross (default): read another node's files; same: all read --src",
        "src": "with --mode same: the storage path every client reads",
        "run": "run id to continue (default: this command's run, else the latest)",
    }
)
def read(c, inventory=None, mode="cross", src=None, run=None):
    """Read back into {local_dst}/{c} on each node, per the computed pairing."""
    with _exits():
        inv = _inventory(c, inventory)
        plan = read_plan(inv, mode, src)
        chosen = session.current(
            inv, _results(c), run, c.config.bench.run, create=plan.mode == "same"
        )
        phases.read(inv, chosen, plan)


@task(
    help={
        "inventory": "inventory file (default: config bench.inventory)",
        "run": "run id to check (default: this command's run, else the latest)",
    }
)
def verify(c, inventory=None, run=None):
    """Check written files and read copies against the reference; exit 1 naming bad ones."""
    with _exits():
        inv = _inventory(c, inventory)
        phases.verify(inv, session.current(inv, _results(c), run, c.config.bench.run))


@task(help={"run": "run id (default: latest)"})
def report(c, run=None):
    """Print the tables of a run again from results/<run>/."""
    with _exits():
        phases.show(RunDir.open(_results(c), run or c.config.bench.run or "latest"))


@task(help={"inventory": "inventory file (default: config bench.inventory)"})
def clean(c, inventory=None):
    """Delete {dst}/{node}/* in storage and the read copies on the nodes (only below those)."""
    with _exits():
        phases.clean(_inventory(c, inventory))


ns = Collection(push, write, read, verify, report, clean)
# the default inventory is the project's, wherever in it `fab` runs; a path given by the
# user (--inventory, FABRIC_BENCH_INVENTORY, a config file) is relative to the cwd
ns.configure(
    {"bench": {"inventory": str(HERE / "inventory.yaml"), "results": "results", "run": None}}
)
