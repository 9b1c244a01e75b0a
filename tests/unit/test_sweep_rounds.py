"""A sweep that warm-up and drift cannot fool (issue 21): a warm-up run first, every point
once a round in a shuffled order (seeded, kept), medians with their spread, points not
told apart from the best marked, ratios to a baseline. Fake nodes behind one fake proxy
whose throughput depends on the point (its write type) and on how warm it is: the first
runs it serves are slower (tests/unit/test_fleet.py's world)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller import commands
from parbench.controller import sweep as sweeping
from parbench.controller.analysis import rounds
from parbench.controller.nodes.fleet import Fleet, using
from parbench.controller.output import sweeptable
from parbench.controller.phases import BenchFailure
from parbench.controller.run.inventory import Inventory, load
from parbench.worker.protocol import ExitCode, PhaseRequest, Record, encode_line
from parbench.worker.results import ClientResult

from .fabtasks import exit_of
from .test_fleet import NodeConnection, probes  # noqa: F401 - a fixture
from .test_orchestration import INVENTORY, World

#: a point's speed on a warm proxy (MUST_CACHE twice THROUGH: the true ratio is 2)
SPEED = {"MUST_CACHE": 2.0, "THROUGH": 1.0, "CACHE_THROUGH": 1.5}
#: the share of its speed the proxy gives the k-th run it serves (cold JIT and caches)
WARMING = (0.3, 0.65)


class Proxy(World):
    """The nodes' world with one proxy in front of storage that warms with each run."""

    def __init__(self) -> None:
        super().__init__()
        self.served: list[str] = []  # run ids, in the order the proxy first saw them

    def seconds(self, request: PhaseRequest) -> float:
        with self.lock:
            if request.run_id not in self.served:
                self.served.append(request.run_id)
            k = self.served.index(request.run_id)
        warm = WARMING[k] if k < len(WARMING) else 1.0
        return 1.0 / (SPEED[request.storage.write_type] * warm)


class ProxiedNode(NodeConnection):
    """A fake node whose clients take as long as the proxy makes them."""

    def run(self, command: str, **kwargs):  # type: ignore[no-untyped-def]
        if " -m worker run " not in command:
            return super().run(command, **kwargs)
        words = shlex.split(command)
        if "--json" in words:
            self.world.files[words[-3]] = words[-1]
        request = PhaseRequest.from_json(self.world.files[words[words.index("run") + 1]])
        start = 0.0
        for watcher in kwargs.get("watchers", []):
            [answer] = watcher.submit(f"parbench-ready {self.node}\n")
            start = float(answer.split()[1]) if answer.startswith("go") else 0.0
        took = self.world.seconds(request)  # type: ignore[attr-defined]
        records = [
            ClientResult(
                request.run_id, request.phase, request.node, t.client, self.node, "posix",
                t.path, status="ok", bytes=5 << 20, start=start, end=start + took,
                iteration=request.iteration, warmup=request.warmup,
            )
            for t in request.clients
        ]  # fmt: skip
        self.world.files[request.out] = "".join(r.to_json() + "\n" for r in records)
        told = "".join(encode_line(Record(r)) + "\n" for r in records)
        return SimpleNamespace(stdout=told, stderr="", exited=int(ExitCode.OK))


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    (tmp_path / "ref.txt").write_text("12345")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


def _sweep(inventory: Inventory, root: Path, order: list[str], **how) -> dict:
    """A sweep of the write types in ``order`` from a cold proxy: its document."""
    proxy = Proxy()
    with using(Fleet(connect=lambda inv, node: ProxiedNode(proxy, node.id))):
        commands.sweep(inventory, {"write_type": order}, ["write"], root, **how)
    [doc] = [json.loads(p.read_text()) for p in sorted((root / "sweeps").glob("*.json"))][-1:]
    return doc


def _ratio(doc: dict) -> float:
    rate = {
        p["values"]["write_type"]: p["figures"]["write"]["aggregate_throughput"]
        for p in doc["points"]
    }
    return rate["MUST_CACHE"] / rate["THROUGH"]


pytestmark = pytest.mark.usefixtures("probes")  # each node's probe answered in-process
ORDERS = (["MUST_CACHE", "THROUGH"], ["THROUGH", "MUST_CACHE"])


def test_opposite_orders_agree_on_the_ratio_by_default(
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    ratios = [_sweep(inventory, tmp_path / f"r{i}", order) for i, order in enumerate(ORDERS)]
    first, second = (_ratio(doc) for doc in ratios)
    assert abs(first / second - 1) <= 0.3, (first, second)
    assert first == pytest.approx(2.0, rel=0.3)


@pytest.mark.parametrize("seed", [1, 2, 3, 42, 999])
def test_with_warmup_and_shuffled_rounds_any_seed_agrees(
    inventory: Inventory,
    tmp_path: Path,
    seed: int,  # noqa: F811
) -> None:
    docs = [_sweep(inventory, tmp_path / f"r{i}", o, seed=seed) for i, o in enumerate(ORDERS)]
    first, second = (_ratio(doc) for doc in docs)
    assert abs(first / second - 1) <= 0.3, (first, second)
    assert [d["seed"] for d in docs] == [seed, seed]


def test_without_them_the_order_decides(inventory: Inventory, tmp_path: Path) -> None:
    """The before: one run a point, in the order given, the first on a cold proxy."""
    docs = [
        _sweep(inventory, tmp_path / f"r{i}", order, rounds=1, warmup=False, seed=5)
        for i, order in enumerate(ORDERS)
    ]
    first, second = (_ratio(doc) for doc in docs)
    assert first / second < 0.5 or second / first < 0.5, (first, second)


def test_the_document_keeps_seed_orders_warmup_and_every_round(
    inventory: Inventory,
    tmp_path: Path,
    capsys,  # noqa: F811
) -> None:
    root = tmp_path / "results"
    doc = _sweep(inventory, root, ["MUST_CACHE", "THROUGH", "CACHE_THROUGH"], seed=7)
    said = capsys.readouterr().out
    assert doc["schema"] == "parbench.sweep/2" and doc["seed"] == 7 and doc["rounds"] == 3
    assert "seed 7 (--seed 7 repeats it)" in said
    assert doc["orders"] == [
        [f"write_type={w}" for w in order]
        for order in rounds.orders(["MUST_CACHE", "THROUGH", "CACHE_THROUGH"], 3, 7)
    ]
    assert len({tuple(o) for o in doc["orders"]}) > 1  # a new order each round
    warm = doc["warmup"]
    assert warm["round"] == 0 and warm["run_id"] and warm["error"] is None
    labels = json.loads((root / warm["run_id"] / "run.json").read_text())["labels"]
    assert labels == {"sweep": doc["sweep_id"], "round": "warmup", "write_type": "MUST_CACHE"}
    for point in doc["points"]:
        assert [r["round"] for r in point["runs"]] == [1, 2, 3]
        for r in point["runs"]:
            sealed = json.loads((root / r["run_id"] / "run.json").read_text())["labels"]
            assert sealed == {"sweep": doc["sweep_id"], "round": str(r["round"]),
                              **point["values"]}  # fmt: skip
        write = point["figures"]["write"]
        by_round = sorted(write["by_round"].values())
        assert write["aggregate_throughput"] == by_round[1]  # the median of 3
        assert write["spread"]["low"] == by_round[0] and write["spread"]["high"] == by_round[2]
        assert write["spread"]["ci_level"] == 0.75
        assert write["short"] is True and any(w.startswith("short:") for w in write["warnings"])
        # a warning of each kind once, not once per round with that round's seconds
        assert len([w for w in write["warnings"] if w.startswith("short:")]) == 1
    # the page and the table say the same
    page = (root / "sweeps" / f"{doc['sweep_id']}.html").read_text()
    assert "seed 7" in page and "(round 3)" in page and doc["warmup"]["run_id"] in page
    table = sweeptable.sweep_table(doc, ["write_type"])
    assert "3 round(s) in shuffled order, seed 7, after a warm-up run" in table
    assert "ok, short: write" in table


def test_the_same_seed_repeats_the_sweep_exactly(
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    docs = [_sweep(inventory, tmp_path / f"r{i}", list(SPEED), seed=11) for i in range(2)]
    assert docs[0]["orders"] == docs[1]["orders"]
    assert [p["figures"] for p in docs[0]["points"]] == [p["figures"] for p in docs[1]["points"]]


def test_baseline_ratios_and_points_not_told_apart(
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    doc = _sweep(
        inventory, tmp_path, ["MUST_CACHE", "THROUGH"], seed=3, baseline="write_type=THROUGH"
    )
    by = {p["values"]["write_type"]: p["figures"]["write"] for p in doc["points"]}
    assert doc["baseline"] == "write_type=THROUGH"
    mine, base = by["MUST_CACHE"], by["THROUGH"]
    ratio = mine["vs_baseline"]
    assert ratio["baseline"] == "write_type=THROUGH" and ratio["n"] == 3
    assert ratio["value"] == pytest.approx(
        mine["aggregate_throughput"] / base["aggregate_throughput"]
    )
    per_round = [mine["by_round"][k] / base["by_round"][k] for k in ("1", "2", "3")]
    assert (ratio["low"], ratio["high"]) == (
        pytest.approx(min(per_round)),
        pytest.approx(max(per_round)),
    )
    assert base["vs_baseline"]["value"] == 1.0
    assert mine["best"] and not base["best"]
    table = sweeptable.sweep_table(doc, ["write_type"])
    assert "write / baseline" in table and f"{ratio['value']:.2f} [" in table


def test_a_range_that_overlaps_the_best_is_marked_not_told_apart() -> None:
    def point(name: str, rates: list[float]) -> sweeping.PointOutcome:
        runs = [
            sweeping.RoundOutcome(k, f"r{name}{k}", {"write": {"aggregate_throughput": v}})
            for k, v in enumerate(rates, 1)
        ]
        return sweeping.PointOutcome(f"clients={name}", {"clients": name}, runs)

    sweep = sweeping.Sweep("sweep-x", 1, 3)
    sweep.points = [point("1", [10.0, 30, 20]), point("2", [25.0, 35, 40]), point("4", [1.0, 2, 3])]
    doc = sweeping.document(sweep)
    close, best, far = (p["figures"]["write"] for p in doc["points"])
    assert best["best"] and close["overlaps_best"] and not far["overlaps_best"]
    table = sweeptable.sweep_table(doc, ["clients"])
    assert "~" in table.splitlines()[2] and "*" in table.splitlines()[3]


def test_a_version_1_document_still_draws(tmp_path: Path) -> None:
    doc = {
        "schema": "parbench.sweep/1", "sweep_id": "sweep-old",
        "points": [{"point": "clients=1", "values": {"clients": "1"}, "run_id": "r1",
                    "error": None, "figures": {"write": {"aggregate_throughput": 1 << 20,
                                                         "valid": True}}}],
    }  # fmt: skip
    table = sweeptable.sweep_table(doc, ["clients"])
    assert "one run a point" in table and "1.00" in table


def test_shared_rounds_module() -> None:
    assert rounds.orders("abc", 4, 9) == rounds.orders("abc", 4, 9)
    assert all(sorted(o) == ["a", "b", "c"] for o in rounds.orders("abc", 4, 9))
    s = rounds.spread([3.0, 1.0, 2.0])
    assert (s.value, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 3)
    assert rounds.ci_level(5) == 0.9375
    r = rounds.ratio({1: 4.0, 2: 6.0}, {1: 2.0, 2: 2.0})
    assert r is not None and (r.value, r.low, r.high) == (2.5, 2.0, 3.0)
    assert rounds.ratio({1: 1.0}, {2: 1.0}) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rounds": "0"}, "--rounds 0: expected a whole number from 1 to 100"),
        ({"rounds": "x"}, "--rounds x: expected a whole number"),
        ({"seed": "-1"}, "--seed -1: expected a whole number >= 0"),
        ({"baseline": "write_type"}, "--baseline write_type: expected AXIS=VALUE"),
        ({"baseline": "clients=1"}, "--baseline clients=1: clients is not swept here"),
        ({"baseline": "write_type=ASYNC_THROUGH"},
         "--baseline write_type=ASYNC_THROUGH: ASYNC_THROUGH is not one of --write-type"),
    ],
)  # fmt: skip
def test_bad_sweep_options_exit_2(tmp_path: Path, options: dict, message: str) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("nodes:\n  - {id: n0, host: a}\n")
    stop = exit_of("sweep", tmp_path, inventory, write_type="MUST_CACHE,THROUGH", **options)
    assert stop.code == 2 and stop.message.startswith(f"error: {message}"), stop.message


def test_a_failed_warmup_is_said_and_the_rounds_go_on(tmp_path: Path) -> None:
    calls = []

    def one(point, labels, warm):  # type: ignore[no-untyped-def]
        calls.append((labels["round"], warm))
        if warm:
            raise BenchFailure("the proxy is cold and fell over")
        return f"run-{len(calls)}", {"write": {"aggregate_throughput": 1.0}}

    found = [sweeping.Point({"clients": "1"}, None)]  # type: ignore[arg-type]
    done = sweeping.run("sweep-x", found, one, tmp_path, rounds=2, seed=1)
    assert calls == [("warmup", True), ("1", False), ("2", False)]
    assert done.warmup and "fell over" in (done.warmup.error or "")
    assert done.points[0].error is None


def test_the_bench_compares_two_variants_with_the_same_rounds_code() -> None:
    """bench/__main__.py's interleaved comparisons: ratio of medians with the per-round
    ratios' range, from controller/analysis/rounds.py."""
    from bench.__main__ import _compared

    found = _compared("on", "off", {"on": [10.0, 12.0, 11.0], "off": [10.0, 10.0, 11.0]})
    assert found["on_over_off"] == 1.1 and found["on_over_off_range"] == [1.0, 1.2]
