"""fab compare's statistics on synthetic samples: a known step, noise only, too few."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from parbench.controller.analysis.compare import CompareError, compare_phase, compare_runs, resolve
from parbench.controller.run.rundir import RunDir

MIB = 1 << 20


def phase(samples: list[float], config_hash: str = "c1", p99: float = 1000.0) -> dict:
    return {
        "config_hash": config_hash,
        "aggregate_throughput": sum(samples) / len(samples),
        "iterations": {"measured": [{"aggregate_throughput": s} for s in samples]},
        "latency": {"file": {"count": 10, "p99": p99}},
    }


def noisy(centre: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [centre * (1 + rng.uniform(-0.02, 0.02)) for _ in range(n)]


def by_metric(changes):
    return {c.metric: c for c in changes}


def test_a_known_step_is_found_in_the_right_direction() -> None:
    slower = by_metric(
        compare_phase("write", phase(noisy(700 * MIB, 8, 1)), phase(noisy(560 * MIB, 8, 2)))
    )
    agg = slower["aggregate"]
    assert (
        agg.verdict == "worse"
        and agg.p_value < 0.01
        and agg.change == pytest.approx(-0.2, abs=0.02)
    )
    faster = by_metric(
        compare_phase("read", phase(noisy(500 * MIB, 6, 3)), phase(noisy(600 * MIB, 6, 4)))
    )
    assert faster["aggregate"].verdict == "better"
    latency = by_metric(compare_phase("read", phase([1.0], p99=1000), phase([1.0], p99=2000)))
    assert latency["p99_latency"].change == 1.0 and latency["p99_latency"].verdict == "no test"


def test_noise_alone_is_noise_and_a_tiny_significant_shift_too() -> None:
    same = by_metric(
        compare_phase("write", phase(noisy(700 * MIB, 8, 5)), phase(noisy(700 * MIB, 8, 6)))
    )
    assert same["aggregate"].verdict == "noise"
    tiny = by_metric(
        compare_phase(
            "write",
            phase([100.0 + i * 0.01 for i in range(8)]),
            phase([102.0 + i * 0.01 for i in range(8)]),
        )
    )
    assert tiny["aggregate"].p_value < 0.05 and tiny["aggregate"].verdict == "noise"  # 2 % < 5 %


def test_too_few_samples_get_no_test() -> None:
    few = by_metric(compare_phase("write", phase([100.0, 101.0]), phase([50.0, 51.0])))
    assert few["aggregate"].verdict == "no test" and few["aggregate"].samples == (2, 2)


def write_run(root: Path, run_id: str, summary: dict) -> None:
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text("{}")
    for phase in summary:  # records: the run measured something
        (folder / "nodes" / "n0").mkdir(parents=True, exist_ok=True)
        (folder / "nodes" / "n0" / f"{phase}.jsonl").write_text("{}\n")
    RunDir(root, run_id).write_doc("summary.json", summary)


def test_runs_are_named_and_a_different_config_is_refused(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", {"write": phase([1.0, 2.0, 3.0])})
    write_run(tmp_path, "r2", {"write": phase([1.0, 2.0, 3.0])})
    write_run(tmp_path, "r3", {"write": phase([1.0], config_hash="c2")})
    (tmp_path / "latest").symlink_to("r2")
    assert (resolve(tmp_path, "latest"), resolve(tmp_path, "previous")) == ("r2", "r1")
    a, b, changes = compare_runs(tmp_path, "previous", "latest")
    assert (a, b) == ("r1", "r2") and by_metric(changes)["aggregate"].verdict == "noise"
    with pytest.raises(CompareError, match="measured different things .* --anyway"):
        compare_runs(tmp_path, "r2", "r3")
    assert compare_runs(tmp_path, "r2", "r3", anyway=True)[2]
