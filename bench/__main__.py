"""``python -m bench [--cold] [--only PART]``: measure, print, and write
``bench/results.json`` (``--only`` replaces just that part of it).

1. ``testbed up`` with 3 nodes: jars cached (in ``.testbed/jars``), and from the local
   Maven repository only (``.testbed/jars`` removed); with ``--cold`` also from Maven
   Central into an empty Maven repository.
2. Resident memory of the three Alluxio JVMs, idle and right after a benchmark run.
3. Peak resident memory of one worker client writing and reading a 5 MiB and a 256 MiB
   file through the real proxy: streaming means the ratio stays near 1, not near 51.
4. ``fab write`` and ``fab read`` wall time against the clients' own IO span: what the
   controller adds (push check, SSH, start delay, gathering).
5. What recording latency histograms and the throughput series costs: the worker with
   them on and off, rounds interleaved after warm-up, medians of the aggregate.
6. The worker against a bare ``alluxio`` client loop (bench/bare.py), write and read,
   rounds interleaved after warm-up: the ratio of the medians (goal >= 0.97).
7. ``fab write`` at 4, 8, 32 and 64 nodes against the bare SSH fan-out (a Python
   process that imports Fabric, connects to every node and runs ``true``): wall time
   minus the clients' IO window, over the floor (goal <= 2), and the start skew; and
   what the controller process used (CPU, peak threads, open files, peak memory), per
   node from a straight line through the sizes, and so for 1,000 nodes.

8. ``fab verify`` against the ``fab write`` and ``fab read`` it checks, at about 1, 10,
   100 and 1,000 files per client (a duration of small files): verify's wall time over
   theirs (goal <= 1).

9. A chained ``fab write read`` against ``fab write`` alone at 8 nodes, interleaved
   rounds: what the controller adds beyond the clients' IO windows in each, and their
   ratio (goal <= 1.4: a chain pays its set-up once, not once per task).

10. The run's HTML page of 100 nodes x 16 clients of synthetic records (bench/page.py,
   no testbed): its size and the time to summarise and draw it (goal <= 2 MB, <= 10 s).

11. The access paths side by side (issue 20): ``fab sweep --backend
   alluxio,s3,posix,native`` with Alluxio FUSE mounted, each Python path's median
   throughput as a fraction of Alluxio's own Java client (StressClientIOBench).

Timings are noisy on a shared 2-core machine: the comparisons that matter are ratios
within one run, not absolute seconds.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import page
from parbench.controller.analysis import rounds
from testbed import bed
from testbed.layout import REPO, Layout
from testbed.procs import pid_files

OUT = REPO / "bench" / "results.json"
SIZES_MIB = (5, 256)


def timed_up(layout: Layout) -> float:
    bed.down(layout)
    began = time.monotonic()
    bed.up(layout, nodes=3)
    return round(time.monotonic() - began, 1)


def jvm_rss_mib(layout: Layout) -> dict[str, float]:
    rss = {}
    for pf in pid_files(layout.run):
        pid = pf.live_pid()
        if pf.name.startswith("alluxio") and pid:
            status = Path(f"/proc/{pid}/status").read_text()
            kib = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            rss[pf.name] = round(kib / 1024, 1)
    rss["total"] = round(sum(rss.values()), 1)
    return rss


def up_times(layout: Layout, cold: bool) -> dict[str, float]:
    times = {"jars_cached_s": timed_up(layout)}
    shutil.rmtree(layout.jars)
    times["jars_from_local_maven_repo_s"] = timed_up(layout)
    if cold:
        with tempfile.TemporaryDirectory() as repo:
            shutil.rmtree(layout.jars)
            os.environ["PARBENCH_MAVEN_REPO"] = repo
            try:
                times["jars_from_maven_central_s"] = timed_up(layout)
            finally:
                del os.environ["PARBENCH_MAVEN_REPO"]
    return times


def worker_peak_rss(phase_args: list[str]) -> float:
    """Peak RSS (MiB) of the worker's client processes for one ``python -m worker`` run."""
    code = (
        "import resource, subprocess, sys; "
        "subprocess.run([sys.executable, '-m', 'parbench.worker', *sys.argv[1:]], check=True, "
        "stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *phase_args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return round(int(out.split()[-1]) / 1024, 1)


def worker_memory(
    port: int, scratch: Path, storage: tuple[str, ...] = ()
) -> dict[str, dict[str, float]]:
    """Peak RSS of one client writing and reading each size of SIZES_MIB through the
    proxy: the REST API, or ``storage`` (worker flags, e.g. the s3 backend's)."""
    found: dict[str, dict[str, float]] = {}
    for mib in SIZES_MIB:
        ref = scratch / f"{mib}mb.bin"
        with open(ref, "wb") as out:
            for _ in range(mib):
                out.write(os.urandom(1 << 20))
        common = ["--node", "bench", "--nfile", "1", "--host", "127.0.0.1", "--port", str(port)]
        common += storage
        dst = f"/bench-memory/{mib}"
        write = worker_peak_rss(
            ["write", "--src", str(ref), "--dst", dst, *common, "--out", str(scratch / "w.jsonl")]
        )
        read = worker_peak_rss(
            [
                "read",
                "--src",
                f"{dst}/bench/0",
                "--dst",
                str(scratch / "copies"),
                *common,
                "--out",
                str(scratch / "r.jsonl"),
            ]
        )
        found[f"{mib}MiB"] = {"write_peak_rss_mib": write, "read_peak_rss_mib": read}
        ref.unlink()
    return found


def _memory_ratio(mem: dict[str, dict[str, float]]) -> dict[str, float]:
    big, small = f"{SIZES_MIB[-1]}MiB", f"{SIZES_MIB[0]}MiB"
    return {
        op: round(mem[big][f"{op}_peak_rss_mib"] / mem[small][f"{op}_peak_rss_mib"], 2)
        for op in ("write", "read")
    }


def s3_client_memory(port: int, scratch: Path) -> dict:
    """worker_memory through the proxy's S3 API (multipart parts of 5 MiB, 1 MiB chunks)."""
    endpoint = f"http://127.0.0.1:{port}/api/v1/s3"
    mem = worker_memory(port, scratch, ("--backend", "s3", "--endpoint", endpoint))
    return {
        "goal": "memory flat in file size: 256 MiB over 5 MiB peak RSS near 1 (issue 20)",
        "peak_rss_mib": mem,
        "ratio_big_over_small": _memory_ratio(mem),
    }


def controller_overhead(layout: Layout, scratch: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "FABRIC_BENCH_INVENTORY": str(layout.inventory),
        "FABRIC_BENCH_RESULTS": str(scratch / "results"),
    }
    fab = Path(sys.executable).with_name("fab")
    found: dict[str, float] = {}
    for phase in ("write", "read"):
        began = time.monotonic()
        subprocess.run(
            [str(fab), "-r", str(REPO), phase],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        wall = time.monotonic() - began
        summary = json.loads((scratch / "results" / "latest" / "summary.json").read_text())
        found[f"{phase}_fab_wall_s"] = round(wall, 2)
        found[f"{phase}_io_span_s"] = round(summary[phase]["wall_seconds"], 3)
        found[f"{phase}_aggregate_mib_s"] = round(
            summary[phase]["aggregate_throughput"] / (1 << 20), 1
        )
        found[f"{phase}_start_skew_ms"] = round(summary[phase]["start_skew"] * 1000, 1)
    return found


#: measurement cost: clients, file size, rounds after WARMUP_ROUNDS interleaved ones
COST_CLIENTS, COST_MIB, COST_ROUNDS, WARMUP_ROUNDS = 4, 64, 7, 2
#: the seed of the shuffled orders of interleaved rounds (controller/analysis/rounds.py)
SEED = 21


def _aggregate(records: Path) -> float:
    """MiB/s of one worker run: bytes of its records over first start to last end."""
    found = [json.loads(line) for line in records.read_text().splitlines()]
    assert all(r["status"] == "ok" for r in found), found
    span = max(r["end"] for r in found) - min(r["start"] for r in found)
    return sum(r["bytes"] for r in found) / span / (1 << 20)


def meter_cost_us() -> float:
    """Microseconds the meter adds to one chunk (its latency, its bytes in the series and
    in the live-progress tally, as a client records them), timed in-process: the cost no
    round-to-round noise can hide."""
    import multiprocessing

    from parbench.worker import progress
    from parbench.worker.meter import Meter
    from parbench.worker.protocol import Measure

    progress.adopt(progress.Tally(multiprocessing.get_context(), 1).slots, 0)
    meter = Meter(Measure(interval=0.1))
    meter.begin()
    calls = 200_000
    began = time.perf_counter()
    for _ in range(calls):
        meter.moved("write", meter.clock(), 1 << 20)
    return (time.perf_counter() - began) / calls * 1e6


def measurement_cost(port: int, scratch: Path) -> dict:
    """Aggregate MiB/s of the worker (4 clients, 64 MiB each, MUST_CACHE) with latency
    and series recorded (the default) and with both off, in interleaved rounds."""
    ref = scratch / "cost.bin"
    with open(ref, "wb") as out:
        for _ in range(COST_MIB):
            out.write(os.urandom(1 << 20))
    common = [
        *("--node", "bench", "--nfile", str(COST_CLIENTS), "--host", "127.0.0.1"),
        *("--port", str(port), "--write-type", "MUST_CACHE"),
    ]
    modes = {"on": [], "off": ["--no-latency", "--interval", "0"]}
    rates: dict[str, dict[str, list[float]]] = {
        p: {m: [] for m in modes} for p in ("write", "read")
    }
    dst = "/bench-cost"
    drawn = rounds.orders(list(modes), WARMUP_ROUNDS + COST_ROUNDS, SEED)  # drift favours neither
    for round_, order in enumerate(drawn):
        for mode in order:
            extra = modes[mode]
            out = scratch / f"cost-{mode}.jsonl"
            for phase, args in (
                ("write", ["--src", str(ref), "--dst", dst]),
                ("read", ["--src", dst + "/bench/{cid}", "--dst", str(scratch / "copies")]),
            ):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "parbench.worker",
                        phase,
                        *args,
                        *common,
                        *extra,
                        "--out",
                        str(out),
                    ],
                    cwd=REPO,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                if round_ >= WARMUP_ROUNDS:
                    rates[phase][mode].append(_aggregate(out))
    ref.unlink()
    per_chunk_us = meter_cost_us()
    found: dict = {
        "setup": f"{COST_CLIENTS} clients x {COST_MIB} MiB, MUST_CACHE, {COST_ROUNDS} rounds"
        f" after {WARMUP_ROUNDS} warm-up, on/off in shuffled order (seed {SEED})",
        "meter_us_per_chunk": round(per_chunk_us, 2),
    }
    for phase, by_mode in rates.items():
        on = statistics.median(by_mode["on"])
        chunk_us = (1 << 20) / (on * (1 << 20) / COST_CLIENTS) * 1e6  # one client's chunk
        found[phase] = {
            "meter_share_of_a_chunk": round(per_chunk_us / chunk_us, 5),
            **_compared("on", "off", by_mode),
        }
    return found


def _compared(first: str, second: str, rates: dict[str, list[float]]) -> dict:
    """Medians of two variants' rounds (MiB/s), their ratio with the min-max of the
    rounds' own ratios (paired by round), and every round (controller/analysis/rounds.py)."""
    a, b = (rounds.spread(rates[k]).value for k in (first, second))
    ratio = rounds.ratio(dict(enumerate(rates[first])), dict(enumerate(rates[second])))
    return {
        f"{first}_median_mib_s": round(a, 1),
        f"{second}_median_mib_s": round(b, 1),
        f"{first}_over_{second}": round(a / b, 3),
        f"{first}_over_{second}_range": ratio and [round(ratio.low, 3), round(ratio.high, 3)],
        f"{first}_mib_s": [round(r, 1) for r in rates[first]],
        f"{second}_mib_s": [round(r, 1) for r in rates[second]],
    }


#: client overhead (issue 9): clients, file size, measured rounds after WARMUP_ROUNDS
OVERHEAD_CLIENTS, OVERHEAD_MIB, OVERHEAD_ROUNDS = 4, 64, 6


def client_overhead(port: int, scratch: Path) -> dict:
    """The worker (everything it records switched on) against the bare-client reference
    (bench/bare.py) for write and for read with the local copy: 4 clients x 64 MiB,
    MUST_CACHE, one proxy; rounds interleaved (which goes first alternates) after a
    warm-up; medians of the aggregate and their ratio."""
    ref = scratch / "overhead.bin"
    with open(ref, "wb") as out:
        for _ in range(OVERHEAD_MIB):
            out.write(os.urandom(1 << 20))
    proxy = ("--host", "127.0.0.1", "--port", str(port))
    worker = [sys.executable, "-m", "parbench.worker"]
    common = [*proxy, "--node", "bench", "--nfile", str(OVERHEAD_CLIENTS)]
    bare = [sys.executable, "-m", "bench.bare"]
    bare_common = [*proxy, "--clients", str(OVERHEAD_CLIENTS)]
    commands = {
        "write": {
            "worker": [*worker, "write", "--src", str(ref), "--dst", "/bench-overhead/w",
                       *common, "--write-type", "MUST_CACHE"],
            "bare": [*bare, "write", "--src", str(ref), "--dst", "/bench-overhead/b",
                     *bare_common, "--write-type", "MUST_CACHE"],
        },
        "read": {
            "worker": [*worker, "read", "--src", "/bench-overhead/w/bench/{cid}",
                       "--dst", str(scratch / "w-copies"), *common],
            "bare": [*bare, "read", "--src", "/bench-overhead/b/{cid}",
                     "--dst", str(scratch / "b-copies"), *bare_common],
        },
    }  # fmt: skip
    rates = {p: {k: [] for k in ("worker", "bare")} for p in commands}
    for round_ in range(WARMUP_ROUNDS + OVERHEAD_ROUNDS):
        for phase, by_kind in commands.items():
            kinds = list(by_kind) if round_ % 2 == 0 else list(reversed(by_kind))
            for kind in kinds:
                out = scratch / f"overhead-{kind}.jsonl"
                argv = by_kind[kind] + (["--out", str(out)] if kind == "worker" else [])
                done = subprocess.run(argv, cwd=REPO, check=True, capture_output=True, text=True)
                if kind == "bare":
                    out.write_text(done.stdout)
                if round_ >= WARMUP_ROUNDS:
                    rates[phase][kind].append(_aggregate(out))
    ref.unlink()
    found: dict = {
        "setup": f"{OVERHEAD_CLIENTS} clients x {OVERHEAD_MIB} MiB, MUST_CACHE, one proxy;"
        f" {OVERHEAD_ROUNDS} rounds after {WARMUP_ROUNDS} warm-up, interleaved; the worker"
        " with latency and series on; read saves the copy in both",
        "goal": "worker / bare >= 0.97",
    }
    for phase, by_kind in rates.items():
        found[phase] = _compared("worker", "bare", by_kind)
    return found


#: orchestration overhead (issue 9): testbed sizes, one client per node, a 1 MiB file
ORCH_NODES = (4, 8, 32, 64)

#: the bare SSH fan-out: a whole Python process that imports Fabric, connects to every
#: node of the inventory given and runs ``true`` there (what ``fab`` cannot do with less)
FLOOR = """
import sys, yaml
from fabric import Connection, ThreadingGroup
doc = yaml.safe_load(open(sys.argv[1]))
group = ThreadingGroup.from_connections([
    Connection(n["host"], user=n["user"], port=n["port"], connect_kwargs={"key_filename": n["key"]})
    for n in doc["nodes"]
])
if len(sys.argv) > 2:  # a command of each node's own: one thread per node, as fab does
    import threading
    def one(conn, workdir):
        conn.run(sys.argv[2].format(workdir=workdir), hide=True)
    threads = [
        threading.Thread(target=one, args=(conn, n["workdir"]))
        for conn, n in zip(group, doc["nodes"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
else:
    group.run("true", hide=True)
group.close()
"""

#: the same fan-out, each node starting the worker's Python with what a client imports:
#: what any design that runs a Python worker on the nodes pays at least once per node
PYTHON_FLOOR = "cd {workdir} && PYTHONPATH=. venv/bin/python -c 'import worker.__main__, alluxio'"


def _timed(argv: list[str], env: dict) -> float:
    """Seconds a whole process takes, start-up included."""
    began = time.monotonic()
    subprocess.run(argv, cwd=REPO, env=env, check=True, capture_output=True)
    return time.monotonic() - began


def _watched(argv: list[str], env: dict) -> dict:
    """A whole process timed, and what it used: CPU seconds, and its peak threads, open
    files and resident memory (VmHWM), sampled from /proc every 10 ms."""
    began = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    threads = files = peak_kib = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            threads = max(threads, int(status.split("Threads:")[1].split()[0]))
            peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
            files = max(files, len(os.listdir(f"/proc/{proc.pid}/fd")))
        except (OSError, IndexError):
            pass  # it ended between the poll and the read
        time.sleep(0.01)
    wall = time.monotonic() - began
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # this process's children so far
    return {"wall": wall, "usage": usage, "threads": threads, "files": files, "kib": peak_kib}


def _per_node(sizes: list[int], values: list[float]) -> tuple[float, float]:
    """(intercept, slope): the least-squares line through (nodes, value)."""
    fit = statistics.linear_regression(sizes, values)
    return fit.intercept, fit.slope


def controller_scale(found: dict) -> dict:
    """What ``fab write`` needed per node on the controller, and so for 1,000 nodes."""
    sizes = [n for n in ORCH_NODES if f"{n}_nodes" in found]
    scale: dict = {}
    for key, unit in (
        ("controller_cpu_s", "s"),
        ("peak_threads", "threads"),
        ("peak_open_files", "files"),
        ("peak_rss_mib", "MiB"),
    ):
        base, slope = _per_node(sizes, [found[f"{n}_nodes"][key] for n in sizes])
        scale[key] = {
            "per_node": round(slope, 4),
            "base": round(base, 2),
            "at_1000_nodes": round(base + 1000 * slope, 1),
            "unit": unit,
        }
    return scale


#: how often each process is timed at each size, interleaved: floors and ``fab write``
#: vary by a third from run to run on this shared 2-core machine
ORCH_REPEATS = 3


def _orchestration_at(fab: Path, inventory: Path, env: dict, results: Path) -> dict:
    """One interleaved round at one size: the two floors, then ``fab write``."""
    floor = _timed([sys.executable, "-c", FLOOR, str(inventory)], env)
    python_floor = _timed([sys.executable, "-c", FLOOR, str(inventory), PYTHON_FLOOR], env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = _watched([str(fab), "-r", str(REPO), "write"], env)
    cpu = (run["usage"].ru_utime - before.ru_utime) + (run["usage"].ru_stime - before.ru_stime)
    write = json.loads((results / "latest" / "summary.json").read_text())["write"]
    overhead = run["wall"] - write["wall_seconds"]
    return {
        "floor_s": floor,
        "fab_write_wall_s": run["wall"],
        "io_window_s": write["wall_seconds"],
        "overhead_over_floor": overhead / floor,
        "python_floor_s": python_floor,
        "overhead_over_python_floor": overhead / python_floor,
        "start_skew_ms": write["start_skew"] * 1000,
        "controller_cpu_s": cpu,
        "peak_threads": run["threads"],
        "peak_open_files": run["files"],
        "peak_rss_mib": run["kib"] / 1024,
    }


def orchestration_overhead(layout: Layout, scratch: Path) -> dict:
    """``fab write`` at 4, 8, 32 and 64 loopback nodes (``fab push`` done before) against
    the bare fan-out floor, both whole processes timed in the same run, ``ORCH_REPEATS``
    interleaved rounds a size: what ``fab`` adds beyond the clients' IO window, divided
    by the floor (goal <= 2), and the start skew; medians, with each ratio's range."""
    import yaml

    fab = Path(sys.executable).with_name("fab")
    found: dict = {
        "goal": "(fab write wall - IO window) / floor <= 2; start skew <= 20 ms",
        "setup": f"medians of {ORCH_REPEATS} interleaved rounds a size; ranges min-max",
    }
    for nodes in ORCH_NODES:
        state = bed.up(layout, nodes=nodes)
        doc = bed.inventory_dict(layout, state)
        doc["defaults"].update(clients=1, data="1MiB", dst=f"/bench-orch/{nodes}")
        doc["defaults"]["write_type"] = "MUST_CACHE"
        inventory = scratch / f"orch-{nodes}.yaml"
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        results = scratch / f"orch-results-{nodes}"
        env = {
            **os.environ,
            "FABRIC_BENCH_INVENTORY": str(inventory),
            "FABRIC_BENCH_RESULTS": str(results),
        }
        _timed([str(fab), "-r", str(REPO), "push"], env)
        done = [_orchestration_at(fab, inventory, env, results) for _ in range(ORCH_REPEATS)]
        at: dict = {}
        for key in done[0]:
            found_ = rounds.spread(r[key] for r in done)
            at[key] = round(found_.value, 3)
            if key.startswith("overhead_over") or key == "start_skew_ms":
                at[key + "_range"] = [round(found_.low, 2), round(found_.high, 2)]
        found[f"{nodes}_nodes"] = at
    found["controller"] = controller_scale(found)
    bed.up(layout, nodes=3)  # as the other parts expect it
    return found


#: verify's cost: files per client aimed at, the small file they are made of
VERIFY_FILES, VERIFY_FILE = (1, 10, 100, 1000), "16KiB"


def _fab_wall(argv: list[str], env: dict) -> float:
    began = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.monotonic() - began


def _pushed(
    layout: Layout, state: bed.State, scratch: Path, name: str, **defaults: object
) -> tuple[list[str], dict, Path]:
    """``fab`` (as argv), the environment that points it at an inventory of the testbed's
    nodes with ``defaults`` changed and at a results folder of its own, and that folder;
    the nodes pushed."""
    import yaml

    doc = bed.inventory_dict(layout, state)
    doc["defaults"].update(defaults)
    inventory = scratch / f"{name}.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    results = scratch / f"{name}-results"
    env = {
        **os.environ,
        "FABRIC_BENCH_INVENTORY": str(inventory),
        "FABRIC_BENCH_RESULTS": str(results),
    }
    fab = [str(Path(sys.executable).with_name("fab")), "-r", str(REPO)]
    _fab_wall([*fab, "push"], env)
    return fab, env, results


def verify_cost(layout: Layout, scratch: Path) -> dict:
    """``fab write``, ``fab read`` and ``fab verify`` of one run timed as the user runs
    them (whole commands), at about 1 to 1,000 files per client (3 nodes x 2 clients,
    duration runs of small files; a first 2 s write measures the rate that sets each
    duration): verify's wall time over the write's and read's together (goal <= 1)."""
    state = bed.State.load(layout)
    assert state is not None
    fab, env, results = _pushed(
        layout, state, scratch, "verify", clients=2, data=VERIFY_FILE, dst="/bench-verify"
    )
    _fab_wall([*fab, "write", "--duration", "3s"], env)  # a cold proxy warms up
    _fab_wall([*fab, "write", "--duration", "3s"], env)  # ... and this one gives the rate
    rate = _files_per_client(results, "write") / 3.0
    found: dict = {"goal": "fab verify wall / (fab write + fab read wall) <= 1", "setup": ""}
    found["setup"] = f"3 nodes x 2 clients, {VERIFY_FILE} files; write rate {rate:.0f} files/s"
    for files in VERIFY_FILES:
        timing = [] if files == 1 else ["--duration", f"{max(files / rate, 0.5):.1f}s"]
        write = _fab_wall([*fab, "write", *timing], env)
        read = _fab_wall([*fab, "read", *timing], env)
        verify = _fab_wall([*fab, "verify"], env)
        found[f"about_{files}_files"] = {
            "files_per_client": round(_files_per_client(results, "verify-write"), 1),
            "write_s": round(write, 2),
            "read_s": round(read, 2),
            "verify_s": round(verify, 2),
            "verify_over_write_and_read": round(verify / (write + read), 2),
        }
    return found


def _files_per_client(results: Path, phase: str) -> float:
    """Mean files per client of ``phase`` in the latest run."""
    counts = [
        json.loads(line)["files"]
        for path in (results / "latest" / "nodes").glob(f"*/{phase}.jsonl")
        for line in path.read_text().splitlines()
    ]
    return sum(counts) / max(len(counts), 1)


#: the chain's cost: nodes, rounds (interleaved)
CHAIN_NODES, CHAIN_ROUNDS = 8, 3


def _overhead(argv: list[str], env: dict, results: Path, phases: tuple[str, ...]) -> float:
    """Seconds a ``fab`` command took beyond its phases' IO windows."""
    wall = _fab_wall(argv, env)
    summary = json.loads((results / "latest" / "summary.json").read_text())
    return wall - sum(summary[phase]["wall_seconds"] for phase in phases)


def chain_overhead(layout: Layout, scratch: Path) -> dict:
    """``fab write read`` against ``fab write`` at ``CHAIN_NODES`` nodes, ``CHAIN_ROUNDS``
    interleaved rounds: each one's wall time less its IO windows (the orchestration), and
    the chain's over the single command's (medians)."""
    state = bed.up(layout, nodes=CHAIN_NODES)
    fab, env, results = _pushed(
        layout, state, scratch, "chain",
        clients=1, data="1MiB", dst="/bench-chain", write_type="MUST_CACHE",
    )  # fmt: skip
    single, chain = [], []
    for _ in range(CHAIN_ROUNDS):
        single.append(_overhead([*fab, "write"], env, results, ("write",)))
        chain.append(_overhead([*fab, "write", "read"], env, results, ("write", "read")))
    ratio = rounds.ratio(dict(enumerate(chain)), dict(enumerate(single)))
    assert ratio is not None
    bed.up(layout, nodes=3)  # as the other parts expect it
    return {
        "goal": "orchestration of fab write read / of fab write <= 1.4",
        "setup": f"{CHAIN_NODES} nodes x 1 client, 1 MiB; medians of {CHAIN_ROUNDS} rounds",
        "write_overhead_s": round(rounds.spread(single).value, 2),
        "write_read_overhead_s": round(rounds.spread(chain).value, 2),
        "chain_over_single": round(ratio.value, 2),
        "chain_over_single_range": [round(ratio.low, 2), round(ratio.high, 2)],
    }


#: issue 21's check: two sweeps of the same two points from a cold testbed, in opposite
#: orders, must agree on the points' ratio within 30 %
SWEEP_POINTS, SWEEP_ARGS = ("MUST_CACHE", "THROUGH"), ("--steps", "write", "--duration", "3s",
                                                      "--rounds", "5", "--seed", "11")  # fmt: skip


def sweep_order(layout: Layout, scratch: Path) -> dict:
    """``fab sweep`` of two write types, each order from a freshly started testbed (a cold
    proxy): the ratio of their medians in each, and how far the two ratios are apart."""
    ratios = {}
    for order in (SWEEP_POINTS, SWEEP_POINTS[::-1]):
        state = bed.up(layout, nodes=3)  # started again: cold
        name = "sweep-" + "-".join(order).lower()
        fab, env, results = _pushed(layout, state, scratch, name, dst=f"/bench-{name}")
        _fab_wall([*fab, "sweep", "--write-type", ",".join(order), *SWEEP_ARGS], env)
        (found,) = (results / "sweeps").glob("sweep-*.json")
        doc = json.loads(found.read_text())
        median = {
            p["values"]["write_type"]: p["figures"]["write"]["aggregate_throughput"]
            for p in doc["points"]
        }
        ratios[",".join(order)] = round(median[SWEEP_POINTS[0]] / median[SWEEP_POINTS[1]], 3)
    first, second = ratios.values()
    apart = abs(first - second) / min(first, second)
    bed.up(layout, nodes=3)  # as the other parts expect it
    return {
        "goal": "two orders from a cold testbed agree on the ratio within 30 % (issue 21)",
        "setup": f"3 nodes x 2 clients, 5 MiB; fab sweep --write-type A,B {' '.join(SWEEP_ARGS)}",
        f"{SWEEP_POINTS[0]}_over_{SWEEP_POINTS[1]}": ratios,
        "apart": round(apart, 3),
        "met": apart <= 0.3,
    }


#: the access paths side by side, and the workload each runs (issue 20)
PATHS = ("alluxio", "s3", "posix", "native")
PATHS_ARGS = ("--size", "64MiB", "--steps", "write,read", "--duration", "5s", "--rounds", "3",
              "--seed", "20")  # fmt: skip


def access_paths(layout: Layout, scratch: Path) -> dict:
    """``fab sweep --backend alluxio,s3,posix,native`` on the testbed with Alluxio FUSE
    mounted (posix through it; left out, with the reason, where FUSE cannot work): each
    Python path's median throughput as a fraction of Alluxio's own Java client's."""
    from testbed import fuse

    why = fuse.unavailable()
    paths = [p for p in PATHS if p != "posix" or why is None]
    state = bed.fuse_up(layout) if why is None else bed.State.load(layout)
    assert state is not None
    try:
        fab, env, results = _pushed(layout, state, scratch, "paths", dst="/bench-paths/sweep")
        _fab_wall([*fab, "sweep", "--backend", ",".join(paths), *PATHS_ARGS], env)
    finally:
        if why is None:
            bed.fuse_down(layout)
    (found,) = (results / "sweeps").glob("sweep-*.json")
    doc = json.loads(found.read_text())
    ratios: dict[str, dict] = {}
    for point in doc["points"]:
        backend = point["values"]["backend"]
        for phase, figures in point["figures"].items():
            versus = figures.get("vs_baseline") or {}
            ratios.setdefault(backend, {})[phase] = {
                "mib_s": round(figures["aggregate_throughput"] / 2**20, 1),
                "of_native": versus.get("value") and round(versus["value"], 3),
                "of_native_range": versus and [round(versus["low"], 3), round(versus["high"], 3)],
            }
    return {
        "goal": "every Python path's throughput as a fraction of the native client's (issue 20)",
        "setup": f"3 nodes x 2 clients; fab sweep --backend {','.join(paths)}"
        f" {' '.join(PATHS_ARGS)}",
        "left_out": None if why is None else f"posix: Alluxio FUSE cannot work here: {why}",
        "paths": ratios,
    }


def _port(layout: Layout) -> int:
    port = bed.State.load(layout).proxy_port
    assert port is not None
    return port


#: the parts ``--only`` can measure alone (the testbed is started with 3 nodes first)
ALONE: dict[str, Callable[[Layout, Path], dict]] = {
    "measurement_cost": lambda layout, scratch: measurement_cost(_port(layout), scratch),
    "client_overhead": lambda layout, scratch: client_overhead(_port(layout), scratch),
    "s3_client_memory": lambda layout, scratch: s3_client_memory(_port(layout), scratch),
    "orchestration_overhead": orchestration_overhead,
    "verify_cost": verify_cost,
    "chain_overhead": chain_overhead,
    "sweep_order": sweep_order,
    "access_paths": access_paths,
}


#: the parts that need no testbed (``--only`` runs them without starting it)
NO_TESTBED: dict[str, Callable[[], dict]] = {
    "page_at_scale": lambda: page.page_at_scale(100, 16),
}


def compiled() -> None:
    """The controller's and the worker's bytecode written, as an installed package has it
    (pip compiles on install): a shell with ``PYTHONDONTWRITEBYTECODE`` set (this
    machine's) would otherwise make every ``fab`` compile them from source, 0.1 s a
    command that no user pays."""
    argv = [sys.executable, "-m", "compileall", "-q", "parbench", "fabfile.py"]
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    args = sys.argv[1:]
    cold = "--cold" in args
    only = args[args.index("--only") + 1] if "--only" in args else None
    layout = Layout()
    compiled()
    if only in NO_TESTBED:
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        results[only] = NO_TESTBED[only]()
        OUT.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results[only], indent=2))
        return 0
    if only in ALONE:
        bed.up(layout, nodes=3)
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        with tempfile.TemporaryDirectory() as tmp:
            results[only] = ALONE[only](layout, Path(tmp))
        OUT.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results[only], indent=2))
        return 0
    results: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "command": "python -m bench" + (" --cold" if cold else ""),
    }
    results["testbed_up_3_nodes"] = up_times(layout, cold)
    results["alluxio_jvm_rss_mib_idle"] = jvm_rss_mib(layout)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        results["controller_overhead"] = controller_overhead(layout, scratch)
        results["alluxio_jvm_rss_mib_after_run"] = jvm_rss_mib(layout)
        port = bed.State.load(layout).proxy_port
        results["worker_client_memory"] = worker_memory(port, scratch)
        results["s3_client_memory"] = s3_client_memory(port, scratch)
        results["measurement_cost"] = measurement_cost(port, scratch)
        results["client_overhead"] = client_overhead(port, scratch)
        results["orchestration_overhead"] = orchestration_overhead(layout, scratch)
        results["verify_cost"] = verify_cost(layout, scratch)
        results["chain_overhead"] = chain_overhead(layout, scratch)
        results["sweep_order"] = sweep_order(layout, scratch)
        results["access_paths"] = access_paths(layout, scratch)
    for part, measure in NO_TESTBED.items():
        results[part] = measure()
    results["worker_memory_ratio_big_over_small"] = _memory_ratio(results["worker_client_memory"])
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
