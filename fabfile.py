"""parbench: parallel write / read / verify against an Alluxio cluster, over SSH.

    fab write read verify                      one run, chained
    fab write --iterations 5 --warmup 1        repeated, the first not counted
    fab write --duration 60s read --duration 60s   files one after another for a minute
    fab meta                                   metadata ops/s (create, stat, list, delete)
    fab sweep --size 1MiB,64MiB --clients 1,4  a run per point of the matrix
    fab read --mode same --src /parbench/n0/0  every client reads one file
    fab verify --run 20261125T103200Z-1a2b     check an earlier run again
    FABRIC_BENCH_INVENTORY=other.yaml fab write read verify

The inventory comes from ``--inventory``, else the config key ``bench.inventory``
(``fabric.yaml``, ``FABRIC_BENCH_INVENTORY``, ``fab -f config.yaml``), else
``inventory.yaml``. Exit codes: 0 all good, 1 the benchmark found failures (a node, a
client or a file), 2 bad input (inventory, options, missing data or run).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import fabric
from invoke import Collection, Context, Exit

from controller import commands, phases
from controller.analysis import history
from controller.analysis.compare import CompareError, compare_runs
from controller.nodes import stopping
from controller.nodes.fleet import current as fleet
from controller.nodes.limits import LimitError
from controller.nodes.locks import LockFailed, LockHeld
from controller.nodes.push import RuntimeUnavailable
from controller.output import console, openmetrics
from controller.output.exports import keep_check
from controller.output.historycsv import history_csv
from controller.output.openmetrics import PushFailed, PushOptionError
from controller.output.report import check_lines, compare_table, history_table
from controller.run import say
from controller.run.inventory import Inventory, InventoryError, LabelError, load, parse_labels
from controller.run.iterations import (
    MAX_ITERATIONS,
    MAX_WARMUP,
    IterationPlan,
    IterationPlanError,
    seconds_of,
)
from controller.run.pairing import PairingError
from controller.run.plan import PlanError, check_read_options, phase_budget, read_plan
from controller.run.reference import PushError
from controller.run.run import Run, RunMismatch
from controller.run.rundir import ResultsError, RunDir, RunNotFound, latest_id
from controller.run.seal import RunAltered
from controller.sweep import SweepError, parse_axes

HERE = Path(__file__).resolve().parent
#: options with no short flag (-v, -q would sit next to fab's own)
LONG_ONLY = ("verbose", "quiet")
OUTPUT_HELP = {
    "verbose": "every table, node and client line (for this task and the rest of the chain)",
    "quiet": "the headline and failures only (for this task and the rest of the chain)",
}


class BenchTask(fabric.Task):
    """A fab task whose --verbose and --quiet have no short flag."""

    def arg_opts(self, name, default, taken_names):  # type: ignore[no-untyped-def]
        opts = super().arg_opts(name, default, taken_names)
        if name in LONG_ONLY:
            opts["names"] = opts["names"][:1]
        return opts


def task(**kwargs):  # type: ignore[no-untyped-def]
    """fabric's task, with --verbose and --quiet long only and their help."""

    def made(body):  # type: ignore[no-untyped-def]
        params = inspect.signature(body).parameters
        given = {k: v for k, v in OUTPUT_HELP.items() if k in params}
        kwargs["help"] = {**given, **kwargs.get("help", {})}
        return fabric.task(klass=BenchTask, **kwargs)(body)

    return made


def _output(c: Context, verbose: bool = False, quiet: bool = False) -> None:
    """How much the console says: the flag, else one a task before it in the chain was
    given, else the config key bench.output (FABRIC_BENCH_OUTPUT)."""
    if verbose and quiet:
        raise console.OutputLevelError("--verbose and --quiet: give one of them")
    flag = "verbose" if verbose else "quiet" if quiet else None
    console.set_level(c.config.bench.get("output"), flag)


#: what the layers below the command layer say goes through the console too
say.install(console)
BAD_INPUT = (
    InventoryError,
    PlanError,
    PairingError,
    PushError,
    RunNotFound,
    RunMismatch,
    RunAltered,
    LockHeld,
    IterationPlanError,
    LabelError,
    SweepError,
    CompareError,
    history.OptionError,
    PushOptionError,
    console.OutputLevelError,
)


@contextmanager
def _exits() -> Iterator[None]:
    """Known failures become a message and an exit code, not a traceback; SIGTERM takes
    Ctrl-C's path (130 for SIGINT, 143 for SIGTERM)."""
    stopping.install()
    try:
        yield
    except BAD_INPUT as exc:
        raise Exit(f"error: {exc}", code=2) from None
    except phases.BenchFailure as exc:
        raise Exit(f"failed: {exc}", code=exc.code) from None
    except (
        RuntimeUnavailable, ResultsError, LockFailed, LimitError, history.HistoryError, PushFailed
    ) as exc:  # fmt: skip
        raise Exit(f"failed: {exc}", code=1) from None
    except stopping.Interrupted as exc:
        raise Exit("interrupted", code=exc.code) from None
    except KeyboardInterrupt as exc:
        raise Exit("interrupted", code=stopping.exit_code(exc)) from None


def _inventory(c: Context, inventory: Optional[str]) -> Inventory:
    return load(inventory or c.config.bench.inventory)


def _today(
    c: Context, inventory: Optional[str], from_run: bool
) -> Callable[[], Optional[Inventory]]:
    """Today's inventory, loaded when a run needs it; None with ``--from-run``."""
    return lambda: None if from_run else _inventory(c, inventory)


def _results(c: Context) -> Path:
    """The results folder (``bench.results``); the history's place goes with it."""
    root = Path(c.config.bench.results)
    history.configure(c.config.bench.history)
    return root if root.is_absolute() else HERE / root


def _rounds(
    iterations: Optional[str], warmup: Optional[str], duration: Optional[str]
) -> Callable[[Inventory], IterationPlan]:
    """The options checked now; later, an inventory's repeats with them where given."""
    given = (
        _count("iterations", iterations, 1, MAX_ITERATIONS),
        _count("warmup", warmup, 0, MAX_WARMUP),
        _seconds("duration", duration),
    )
    return lambda inv: inv.settings.iteration_plan.overridden(*given).fits(
        phase_budget(inv.settings)
    )


def _seconds(name: str, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        return seconds_of(value)
    except ValueError as exc:
        raise IterationPlanError(f"--{name}: {exc}") from None


def _count(name: str, value: Optional[str], low: int, high: int) -> Optional[int]:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise IterationPlanError(f"--{name}: expected a whole number {low}..{high}, got {value!r}")
    return number


INVENTORY_HELP = "inventory file (default: config bench.inventory)"
ITERATIONS_HELP = "measured iterations (default: defaults.iterations, or until_stable)"
WARMUP_HELP = "iterations run first and not counted (default: defaults.warmup)"
DURATION_HELP = "each client moves files one after another for this long, e.g. 60s, 2m"
RUN_HELP = "run id to continue (default: this command's run, else the latest)"
PUSHGATEWAY_HELP = "push the run's metrics.prom figures to this Prometheus Pushgateway URL"
FROM_RUN_HELP = "use the run's own settings even where today's inventory differs"


@task(help={"inventory": INVENTORY_HELP})
def push(c, inventory=None, verbose=False, quiet=False):
    """Copy the worker, the reference data and its runtime to every node (what changed)."""
    with _exits():
        _output(c, verbose, quiet)
        commands.push_all(_inventory(c, inventory))


@task(
    iterable=["label"],
    help={
        "inventory": INVENTORY_HELP,
        "iterations": ITERATIONS_HELP,
        "warmup": WARMUP_HELP,
        "duration": DURATION_HELP,
        "label": "KEY=VALUE kept with the run (repeatable; wins over the inventory's labels)",
    },
)
def write(
    c, inventory=None, iterations=None, warmup=None, duration=None, label=None, verbose=False,
    quiet=False,
):  # fmt: skip
    """Start a run: client c of node n writes the reference file to {dst}/{n}/{c}."""
    with _exits():
        _output(c, verbose, quiet)
        root = _results(c)
        previous = latest_id(root)
        rounds = _rounds(iterations, warmup, duration)
        labels = parse_labels(label or [])
        today = _inventory(c, inventory)
        chosen = rounds(today)
        run = fleet().runs.start(today, root, labels)
        try:
            commands.write(run, chosen)
        except LockHeld:  # another run is at work there: this one leaves no trace
            fleet().runs.discard(run, previous)
            raise


@task(
    help={
        "inventory": INVENTORY_HELP,
        "mode": "cross (default): read another node's files; same: all read --src",
        "src": "with --mode same: the storage path every client reads ({cid}: its id)",
        "run": RUN_HELP,
        "from-run": FROM_RUN_HELP,
        "iterations": ITERATIONS_HELP,
        "warmup": WARMUP_HELP,
        "duration": DURATION_HELP,
    }
)
def read(
    c,
    inventory=None,
    mode="cross",
    src=None,
    run=None,
    from_run=False,
    iterations=None,
    warmup=None,
    duration=None,
    verbose=False,
    quiet=False,
):
    """Read back into {local_dst}/{c} on each node, per the run's pairing."""
    with _exits():
        _output(c, verbose, quiet)
        check_read_options(mode, src)
        rounds = _rounds(iterations, warmup, duration)
        if mode == "cross" and not from_run:  # one node: say so before looking for a run
            read_plan(_inventory(c, inventory))
        chosen = fleet().runs.current(
            _today(c, inventory, from_run),
            _results(c),
            run,
            c.config.bench.run,
            create=mode == "same",
        )
        commands.read(chosen, mode, src, rounds(chosen.inventory))


@task(help={"inventory": INVENTORY_HELP, "run": RUN_HELP, "from-run": FROM_RUN_HELP})
def verify(c, inventory=None, run=None, from_run=False, verbose=False, quiet=False):
    """Check the run's written files and read copies against its reference; exit 1
    naming bad ones."""
    with _exits():
        _output(c, verbose, quiet)
        chosen = fleet().runs.current(
            _today(c, inventory, from_run), _results(c), run, c.config.bench.run
        )
        commands.verify(chosen)


@task(
    help={
        "run": "run id (default: latest)",
        "collect": "first fetch the records nodes kept when a command lost them",
        "inventory": INVENTORY_HELP + "; with --collect",
        "from-run": FROM_RUN_HELP,
        "html": "also write the run's HTML page (results/<run>/report.html) and print its path",
        "pushgateway": PUSHGATEWAY_HELP,
    }
)
def report(
    c, run=None, collect=False, inventory=None, from_run=False, html=False, pushgateway=None,
    verbose=False, quiet=False,
):  # fmt: skip
    """Print the blocks of a run again from results/<run>/ (not after its own phases in a
    chain: they are printed above); --html writes its page; --pushgateway pushes its
    figures."""
    with _exits():
        _output(c, verbose, quiet)
        gateway = pushgateway and openmetrics.gateway_url(pushgateway)
        chosen = run or c.config.bench.run or "latest"
        if collect:
            today = _today(c, inventory, from_run)
            phases.collect(Run.open(_results(c), chosen).reconciled(today()))
        folder = RunDir.open(_results(c), chosen)
        damaged: list[str] = []  # records left out of the tables and the page: named last
        chained = fleet().runs.active(_results(c))  # its phases' blocks printed above: not again
        if collect or chained is None or chained.run_id != folder.run_id:
            commands.show(folder, damaged)
        if html:
            console.out(f"report: {commands.html(folder, damaged)}")
        if gateway:
            console.out(commands.push_metrics(folder, gateway))
        commands.left_out(damaged)


@task(
    iterable=["label"],
    help={"inventory": INVENTORY_HELP, "label": "KEY=VALUE kept with a run this starts"},
)
def meta(c, inventory=None, label=None, verbose=False, quiet=False):
    """Metadata rates (mdtest-like): each client creates, stats, lists and deletes
    defaults.meta_files files in {dst}/{n}/{c}.meta; chained after write, in its run."""
    with _exits():
        _output(c, verbose, quiet)
        root = _results(c)
        previous = latest_id(root)
        run = fleet().runs.active(root)
        started = run is None
        if run is None:
            run = fleet().runs.start(_inventory(c, inventory), root, parse_labels(label or []))
        try:
            commands.meta(run)
        except LockHeld:
            if started:
                fleet().runs.discard(run, previous)
            raise


@task(
    help={
        "inventory": INVENTORY_HELP,
        "size": "file sizes, e.g. 1MiB,64MiB,1GiB (data generated on the nodes)",
        "clients": "clients per node, e.g. 1,4,16",
        "chunk-size": "chunk sizes, e.g. 256KiB,4MiB",
        "write-type": "write types, e.g. MUST_CACHE,CACHE_THROUGH",
        "read-type": "read types, e.g. CACHE,NO_CACHE",
        "steps": "what each point runs: write, then any of read, verify (default all three)",
    }
)
def sweep(
    c,
    inventory=None,
    size=None,
    clients=None,
    chunk_size=None,
    write_type=None,
    read_type=None,
    steps="write,read,verify",
    verbose=False,
    quiet=False,
):
    """The benchmark over a matrix of settings: each point a run of its own, one sweep id."""
    with _exits():
        _output(c, verbose, quiet)
        axes = parse_axes(
            {
                "size": size,
                "clients": clients,
                "chunk_size": chunk_size,
                "write_type": write_type,
                "read_type": read_type,
            }
        )
        commands.sweep(_inventory(c, inventory), axes, steps.split(","), _results(c))


@task(
    iterable=["label"],
    help={
        "phase": "only this phase (write, read, meta)",
        "label": "KEY=VALUE the runs must carry (repeatable)",
        "last": "only the last N entries",
        "import": "first record every run folder in results/ (runs made before the history)",
        "csv": "print CSV instead: a row per run and phase (docs/results.md lists the columns)",
    },
)
def history_(c, phase=None, label=None, last=None, import_=False, csv=False):
    """The trend of recorded runs: throughput, first done, p99 latency, ops/s, validity."""
    with _exits():
        history.phase_option(phase)
        root = _results(c)
        said = console.err if csv else console.out  # the CSV alone on stdout
        with history.History(history.location(root)) as db:
            if import_:
                done, skipped = history.import_runs(db, root)
                said(f"history: recorded {len(done)} run(s) from {root}")
                for line in skipped:
                    said(f"history: skipped {line}")
            count = _count("last", last, 1, 1_000_000)
            entries = db.entries(phase, parse_labels(label or []), last=count)
            if csv:
                console.out(history_csv(db, entries), end="")
                return
        console.out(history_table(entries))


@task(
    positional=["first", "second"],
    help={
        "first": "run A: an id, latest, or previous (the run before the latest)",
        "second": "run B: the same",
        "anyway": "compare even when a phase's config hash differs",
    },
)
def compare(c, first, second, anyway=False):
    """Per phase and metric, the change from run A to run B and whether it is significant."""
    with _exits():
        a, b, changes = compare_runs(_results(c), first, second, anyway)
        console.out(compare_table(a, b, changes))


@task(
    iterable=["label"],
    help={
        "run": "the run to check (default: this command's, else the latest)",
        "label": "KEY=VALUE the history's runs must share with it (repeatable)",
        "min-effect": "smallest change called a regression: 0 < x < 1, or 5% (default 0.05)",
    },
)
def check(c, run=None, label=None, min_effect="0.05"):
    """Exit 1 naming a regression of the run against the history of the same benchmark."""
    with _exits():
        effect = history.min_effect_of(str(min_effect))
        root = _results(c)
        chained = fleet().runs.active(root)
        chosen = run or (chained.run_id if chained else None)
        labels = parse_labels(label or [])
        from controller.analysis.check import regression_check  # the statistics: when asked

        checked, found = regression_check(root, chosen, labels, effect)
        lines = check_lines(found)
        console.out("\n".join(lines))
        keep_check(checked, found, lines, labels)
        if found.regressions:
            raise Exit(code=1)


@task(
    iterable=["label"],
    help={
        "inventory": INVENTORY_HELP,
        "label": "KEY=VALUE kept with the run (repeatable)",
        "pushgateway": PUSHGATEWAY_HELP,
    },
)
def nightly(c, inventory=None, label=None, pushgateway=None, verbose=False, quiet=False):
    """What a scheduler runs: write, read, verify, then check against the history; the
    run's JUnit, BMF and OpenMetrics files and its HTML page are written (--pushgateway:
    its figures pushed); exits with the worst code of them."""
    with _exits():
        _output(c, verbose, quiet)
        gateway = pushgateway and openmetrics.gateway_url(pushgateway)
    worst = 0
    before = fleet().runs.active(_results(c))
    steps = [
        lambda: write(c, inventory=inventory, label=label),
        lambda: read(c, inventory=inventory),
        lambda: verify(c, inventory=inventory),
        lambda: check(c),
    ]
    for number, step in enumerate(steps):
        try:
            step()
        except Exit as stop:
            if stop.message:
                console.err(stop.message)
            worst = max(worst, stop.code)
            if number == 0 or stop.code in (130, 143):  # no run to go on with, or stopped
                break
    made = fleet().runs.active(_results(c))  # latest moves only once a run measured something
    if made is not None and made is not before:  # a run began: its page, whatever the outcome
        try:
            console.out(f"nightly: report {commands.html(made.dir)}")
        except Exception as exc:  # noqa: BLE001 - the page is one output; the codes stand
            console.err(f"nightly: report of {made.run_id} not written: {exc}")
            worst = max(worst, 1)
        if gateway:
            try:
                console.out(f"nightly: {commands.push_metrics(made.dir, gateway)}")
            except PushFailed as exc:
                console.err(f"failed: {exc}")
                worst = max(worst, 1)
    if worst:
        raise Exit(code=worst)


@task(
    help={
        "inventory": INVENTORY_HELP,
        "data": "also delete the data generated on the nodes ({workdir}/data/generated-*)",
        "runs": "also delete the nodes' run folders {workdir}/runs/<run> (not one in use)",
    }
)
def clean(c, inventory=None, data=False, runs=False, verbose=False, quiet=False):
    """Delete {dst}/{node}/* in storage and the read copies on the nodes (only below those);
    --data, --runs: also the generated data and the run folders in the nodes' workdirs."""
    with _exits():
        _output(c, verbose, quiet)
        commands.clean(_inventory(c, inventory), data=data, runs=runs)


ns = Collection(push, write, read, verify, meta, sweep, report, compare, check, nightly, clean)
ns.add_task(history_, name="history")
# the default inventory is the project's, wherever in it `fab` runs; a path given by the
# user (--inventory, FABRIC_BENCH_INVENTORY, a config file) is relative to the cwd
ns.configure(
    {
        "bench": {
            "inventory": str(HERE / "inventory.yaml"),
            "results": "results",
            "run": None,
            "history": None,
            "output": "default",
        }
    }
)
