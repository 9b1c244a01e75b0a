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
from typing import Any, Callable, Iterator, Optional

import fabric
from invoke import Argument, Collection, Context, Exit

from parbench.controller import commands, phases
from parbench.controller import sweep as sweeping
from parbench.controller.analysis import history
from parbench.controller.analysis.compare import CompareError, compare_runs
from parbench.controller.nodes import stopping
from parbench.controller.nodes.fleet import current as fleet
from parbench.controller.nodes.limits import LimitError
from parbench.controller.nodes.locks import LockFailed, LockHeld
from parbench.controller.nodes.push import RuntimeUnavailable
from parbench.controller.output import console, openmetrics
from parbench.controller.output.exports import keep_check
from parbench.controller.output.historycsv import history_csv
from parbench.controller.output.openmetrics import PushFailed, PushOptionError
from parbench.controller.output.report import check_lines, compare_table, history_table
from parbench.controller.run import flags as flagging
from parbench.controller.run import say
from parbench.controller.run.inventory import Inventory, InventoryError, load
from parbench.controller.run.iterations import (
    IterationPlan,
    IterationPlanError,
)
from parbench.controller.run.labels import LabelError, parse_labels
from parbench.controller.run.pairing import PairingError
from parbench.controller.run.plan import PlanError, check_read_options, phase_budget, read_plan
from parbench.controller.run.reference import PushError
from parbench.controller.run.run import Run, RunMismatch
from parbench.controller.run.rundir import ResultsError, RunDir, RunNotFound, latest_id
from parbench.controller.run.seal import RunAltered
from parbench.controller.sweep import SweepError, parse_axes

OUTPUT_HELP = {
    "verbose": "every table, node and client line (for this task and the rest of the chain)",
    "quiet": "the headline and failures only (for this task and the rest of the chain)",
}
#: the only short flags, the same in every task, none of fab's own (-c -d -D -e -f -F -h
#: -H -i -l -p -r -R -S -t -T -V -w): every other option is long only
SHORT = {"clients": "n", "size": "s", "chunk_size": "b"}
#: counts besides the workload flags': shown as INT
COUNTS = ("last", "rounds", "seed")
#: what fab's own options would set that parbench takes from the inventory
NOT_HONOURED = (
    ("key_filename", "--identity (fab's -i): parbench's SSH keys come from the inventory"
     " (nodes[].key)"),
    ("timeout", "-t/--connect-timeout: parbench's comes from the inventory"
     " (defaults.connect_timeout)"),
)  # fmt: skip


class _Count(Argument):
    """An INT option whose value, when it is no number, is kept as typed: the setting's
    check names the flag (invoke's cast would end in a traceback)."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            int(value)
        except (TypeError, ValueError):
            cast = False
        super().set_value(value, cast)


class BenchTask(fabric.Task):
    """A fab task whose options have no short flag but those of SHORT, whose counts show
    as INT, and which refuses fab's options that parbench cannot honour (-H, -i, -t)."""

    counts: frozenset[str] = frozenset()

    def arg_opts(self, name, default, taken_names):  # type: ignore[no-untyped-def]
        opts = super().arg_opts(name, default, taken_names)
        opts["names"] = opts["names"][:1] + ([SHORT[name]] if name in SHORT else [])
        return opts

    def get_arguments(self, ignore_unknown_help=None):  # type: ignore[no-untyped-def]
        kept = dict(self.help)  # invoke's arg_opts pops each help: asked twice, none left
        try:
            arguments = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept
        for argument in arguments:
            if (argument.attr_name or argument.name) in self.counts and argument.kind is str:
                argument.__class__ = _Count
                argument.kind = int
        return arguments

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        c = args[0] if args else None
        if isinstance(c, fabric.Connection):  # fab -H: a call per host
            raise Exit(
                "error: -H/--hosts: parbench runs on the nodes the inventory lists"
                " (nodes:); give them there and leave -H out",
                code=2,
            )
        given = (c.config.get("connect_kwargs") or {}) if isinstance(c, Context) else {}
        for key, refused in NOT_HONOURED:
            if given.get(key):
                raise Exit(f"error: {refused}; set it there and leave the option out", code=2)
        return super().__call__(*args, **kwargs)


def task(workload: tuple[flagging.Flag, ...] = (), **kwargs):  # type: ignore[no-untyped-def]
    """fabric's task, with long-only options, --verbose and --quiet's help, and the
    ``workload`` flags (derived from the settings' declarations) as options the body
    takes in ``**flags``."""

    def made(body):  # type: ignore[no-untyped-def]
        signature = inspect.signature(body)
        params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        extra = [inspect.Parameter(f.option, inspect.Parameter.KEYWORD_ONLY, default=None)
                 for f in workload]  # fmt: skip
        body.__signature__ = signature.replace(parameters=[*params, *extra])
        given = {k: v for k, v in OUTPUT_HELP.items() if k in signature.parameters}
        derived = {f.option: f.help for f in workload}
        kwargs["help"] = {**given, **derived, **kwargs.get("help", {})}
        made = fabric.task(klass=BenchTask, **kwargs)(body)
        made.counts = frozenset([*COUNTS, *(f.option for f in workload if f.counts)])
        return made

    return made


#: the phases of a run that `fab write` starts, and the workload flags of the tasks
WRITTEN = tuple(p for p in flagging.FILE_PHASES)
RUN_FLAGS = flagging.flags((flagging.RUN,), WRITTEN)
PHASE_FLAGS = flagging.flags((flagging.PHASE,), WRITTEN)
META_FLAGS = flagging.flags((flagging.RUN,), ("meta",))
#: a sweep's points are runs of the inventory's settings: the rounds too; its axes apart
SWEEP_FLAGS = flagging.flags(
    (flagging.RUN, flagging.PHASE), WRITTEN, leave=("data", *sweeping.AXES)
)


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


def _inventory(
    c: Context, inventory: Optional[str], flags: Optional[dict[str, Any]] = None
) -> Inventory:
    """The inventory, with the workload ``flags`` given over its defaults."""
    return load(inventory or c.config.bench.inventory, flags)


def _today(
    c: Context, inventory: Optional[str], from_run: bool
) -> Callable[[], Optional[Inventory]]:
    """Today's inventory, loaded when a run needs it; None with ``--from-run``."""
    return lambda: None if from_run else _inventory(c, inventory)


def _results(c: Context) -> Path:
    """The results folder (``bench.results``); the history's place goes with it. A relative
    one is below ``bench.root`` (fab in the checkout: the checkout), else the working
    directory (the installed ``parbench``)."""
    root = Path(c.config.bench.results)
    history.configure(c.config.bench.history)
    return root if root.is_absolute() else Path(c.config.bench.get("root") or Path.cwd()) / root


def _rounds(flags: dict[str, Any]) -> Callable[[Inventory], IterationPlan]:
    """This command's phase's rounds (--iterations, --warmup, --duration, --until-stable)
    checked now; later, an inventory's rounds with them where given."""
    given = flagging.checked(flagging.of_kind(flags, flagging.PHASE))
    chosen = (given.get(k) for k in ("iterations", "warmup", "duration", "until_stable"))
    overrides = tuple(chosen)
    return lambda inv: inv.settings.iteration_plan.overridden(*overrides).fits(
        phase_budget(inv.settings)
    )


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
    workload=RUN_FLAGS + PHASE_FLAGS,
    iterable=["label"],
    help={
        "inventory": INVENTORY_HELP,
        "label": "KEY=VALUE kept with the run (repeatable; wins over the inventory's labels)",
    },
)
def write(c, inventory=None, label=None, verbose=False, quiet=False, **flags):
    """Start a run: client c of node n writes the reference file to {dst}/{n}/{c}."""
    with _exits():
        _output(c, verbose, quiet)
        root = _results(c)
        previous = latest_id(root)
        rounds = _rounds(flags)
        labels = parse_labels(label or [])
        today = _inventory(c, inventory, flagging.of_kind(flags, flagging.RUN))
        chosen = rounds(today)
        run = fleet().runs.start(today, root, labels)
        try:
            commands.write(run, chosen)
        except LockHeld:  # another run is at work there: this one leaves no trace
            fleet().runs.discard(run, previous)
            raise


@task(
    workload=PHASE_FLAGS,
    help={
        "inventory": INVENTORY_HELP,
        "mode": "cross (default): read another node's files; same: all read --src",
        "src": "with --mode same: the storage path every client reads ({cid}: its id)",
        "run": RUN_HELP,
        "from-run": FROM_RUN_HELP,
    },
)
def read(
    c, inventory=None, mode="cross", src=None, run=None, from_run=False, verbose=False,
    quiet=False, **flags,
):  # fmt: skip
    """Read back into {local_dst}/{c} on each node, per the run's pairing."""
    with _exits():
        _output(c, verbose, quiet)
        check_read_options(mode, src)
        rounds = _rounds(flags)
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
    """Check the run's written files and read copies against its reference.

    Exits 1 naming the bad ones."""
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
    """Print the blocks of a run again from results/<run>/.

    Not after its own phases in a chain: they are printed above. --html writes its page;
    --pushgateway pushes its figures."""
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
    workload=META_FLAGS,
    iterable=["label"],
    help={"inventory": INVENTORY_HELP, "label": "KEY=VALUE kept with a run this starts"},
)
def meta(c, inventory=None, label=None, verbose=False, quiet=False, **flags):
    """Metadata rates (mdtest-like): create, stat, list and delete files.

    Each client works on defaults.meta_files files in {dst}/{n}/{c}.meta; chained after
    write, in its run."""
    with _exits():
        _output(c, verbose, quiet)
        root = _results(c)
        previous = latest_id(root)
        run = fleet().runs.active(root)
        started = run is None
        given = flagging.of_kind(flags, flagging.RUN)
        if run is None:
            today = _inventory(c, inventory, given)
            run = fleet().runs.start(today, root, parse_labels(label or []))
        elif given:
            names = ", ".join(flagging.ALL[k].name for k in given)
            raise PlanError(
                f"{names}: meta goes on in the run this command started, whose settings are"
                " sealed: give them to the task that started it"
            )
        try:
            commands.meta(run)
        except LockHeld:
            if started:
                fleet().runs.discard(run, previous)
            raise


@task(
    workload=SWEEP_FLAGS,
    help={
        "inventory": INVENTORY_HELP,
        "size": "file sizes, e.g. 1MiB,64MiB,1GiB (data generated on the nodes)",
        "clients": "clients per node, e.g. 1,4,16",
        "chunk-size": "chunk sizes, e.g. 256KiB,4MiB",
        "write-type": "write types, e.g. MUST_CACHE,CACHE_THROUGH",
        "read-type": "read types, e.g. CACHE,NO_CACHE",
        "backend": "access paths, e.g. alluxio,s3,posix,native: the same workload through"
        " each (with native among them, each point's ratio to it)",
        "steps": "what each point runs: write, then any of read, verify (default all three)",
        "rounds": "every point once a round, in a new shuffled order each round; its figure"
        " the median of its rounds with their min-max (default 3)",
        "seed": "the shuffle's seed a sweep printed: its orders again",
        "no-warmup": "no warm-up run of the first point before the rounds (--warmup N is"
        " each run's own warm-up iterations)",
        "baseline": "AXIS=VALUE, e.g. write_type=THROUGH: each point's ratio to that point",
    },
)
def sweep(
    c,
    inventory=None,
    size=None,
    clients=None,
    chunk_size=None,
    write_type=None,
    read_type=None,
    backend=None,
    steps="write,read,verify",
    rounds=None,
    seed=None,
    no_warmup=False,
    baseline=None,
    verbose=False,
    quiet=False,
    **flags,
):
    """The benchmark over a matrix of settings: warm-up, shuffled rounds, medians."""
    with _exits():
        _output(c, verbose, quiet)
        axes = parse_axes(
            {
                "size": size,
                "clients": clients,
                "chunk_size": chunk_size,
                "write_type": write_type,
                "read_type": read_type,
                "backend": backend,
            }
        )
        base = _inventory(c, inventory, {k: v for k, v in flags.items() if v is not None})
        commands.sweep(
            base, axes, steps.split(","), _results(c),
            sweeping.DEFAULT_ROUNDS if rounds is None else rounds, seed, not no_warmup, baseline,
        )  # fmt: skip


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
        from parbench.controller.analysis.check import (
            regression_check,  # the statistics: when asked
        )

        checked, found = regression_check(root, chosen, labels, effect)
        lines = check_lines(found)
        console.out("\n".join(lines))
        keep_check(checked, found, lines, labels)
        if found.regressions:
            raise Exit(code=1)


@task(
    workload=RUN_FLAGS + PHASE_FLAGS,
    iterable=["label"],
    help={
        "inventory": INVENTORY_HELP,
        "label": "KEY=VALUE kept with the run (repeatable)",
        "pushgateway": PUSHGATEWAY_HELP,
    },
)
def nightly(
    c, inventory=None, label=None, pushgateway=None, verbose=False, quiet=False, **flags
):  # fmt: skip
    """What a scheduler runs: write, read, verify, then check against the history.

    The run's JUnit, BMF and OpenMetrics files and its HTML page are written
    (--pushgateway: its figures pushed); exits with the worst code of them."""
    with _exits():
        _output(c, verbose, quiet)
        gateway = pushgateway and openmetrics.gateway_url(pushgateway)
    worst = 0
    before = fleet().runs.active(_results(c))
    steps = [
        lambda: write(c, inventory=inventory, label=label, **flags),
        lambda: read(c, inventory=inventory, **flagging.of_kind(flags, flagging.PHASE)),
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
    """Delete what runs left: {dst}/{node}/* in storage and the nodes' read copies.

    Only below those; --data, --runs: also the generated data and the run folders in the
    nodes' workdirs."""
    with _exits():
        _output(c, verbose, quiet)
        commands.clean(_inventory(c, inventory), data=data, runs=runs)


def collection(root: Optional[Path] = None) -> Collection:
    """The tasks, configured for ``root``: its inventory.yaml and results/ by default (fab
    in the checkout, wherever in it it runs); None: the working directory's (the installed
    ``parbench``). A path given by the user (--inventory, FABRIC_BENCH_INVENTORY, a config
    file) is relative to the working directory."""
    made = Collection(push, write, read, verify, meta, sweep, report, compare, check, nightly)
    made.add_task(clean)
    made.add_task(history_, name="history")
    made.configure(
        {
            "bench": {
                "inventory": str(root / "inventory.yaml") if root else "inventory.yaml",
                "results": "results",
                "root": str(root) if root else None,
                "run": None,
                "history": None,
                "output": "default",
            }
        }
    )
    return made


#: the installed ``parbench``'s tasks: the working directory's inventory.yaml and results/
ns = collection()
