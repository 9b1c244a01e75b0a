"""fab check on a synthetic history: a step down found with the run where it began, a
flat history passes, a short one is said, invalid runs do not count."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from parbench.controller.analysis import check as checking
from parbench.controller.analysis.check import check
from parbench.controller.analysis.history import History
from parbench.controller.run.rundir import RunNotFound

from .fabtasks import exit_of
from .test_history import make_run


def history_of(tmp_path: Path, values: list[float], invalid: tuple[int, ...] = ()):
    db = History(tmp_path / "h.sqlite")
    runs = []
    for index, value in enumerate(values):
        run = make_run(tmp_path, value)
        if index in invalid:
            summary = run.dir.read_doc("summary.json")
            summary["write"]["valid"] = False
            run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
        db.record(run.dir)
        runs.append(run)
    return db, runs


def noisy(level: float, n: int, rng: random.Random) -> list[float]:
    return [level * (1 + rng.uniform(-0.03, 0.03)) for _ in range(n)]


def verdict(db, run) -> object:
    return check(db, run.run_id, run.dir.read_doc("summary.json", {}))


def test_a_step_down_is_a_regression_named_with_its_first_run(tmp_path: Path) -> None:
    rng = random.Random(1)
    db, runs = history_of(tmp_path, noisy(700, 6, rng) + noisy(560, 3, rng))
    found = verdict(db, runs[-1])
    (regression,) = [r for r in found.regressions if r.metric == "aggregate"]
    assert regression.since == runs[6].run_id and regression.change < -0.15
    assert (regression.runs_before, regression.runs_after) == (6, 3) and regression.p_value < 0.05


def test_a_flat_history_and_a_short_one(tmp_path: Path) -> None:
    rng = random.Random(2)
    db, runs = history_of(tmp_path / "flat", noisy(700, 8, rng))
    assert verdict(db, runs[-1]).regressions == () and verdict(db, runs[-1]).runs == 8
    db, runs = history_of(tmp_path / "short", [700.0, 500.0])
    short = verdict(db, runs[-1])
    assert short.regressions == () and "history too short to judge (2 run(s)" in short.notes[0]


def test_an_improvement_is_no_regression_and_invalid_runs_do_not_count(tmp_path: Path) -> None:
    rng = random.Random(3)
    db, runs = history_of(tmp_path / "up", noisy(500, 6, rng) + noisy(700, 3, rng))
    assert verdict(db, runs[-1]).regressions == ()
    # three slow runs, all invalid: left out, so nothing to see
    db, runs = history_of(tmp_path / "inv", noisy(700, 6, rng) + noisy(400, 3, rng), (6, 7))
    assert [r.metric for r in verdict(db, runs[-1]).regressions] == []


@pytest.mark.parametrize(
    "given", ["abc", "nan", "inf", "-0.1", "0", "1", "50", "0%", "100%", "-5%", "nan%", "", "5 %%"]
)
def test_a_min_effect_that_would_switch_the_check_off_is_refused(
    tmp_path: Path, given: str
) -> None:
    stop = exit_of("check", tmp_path, min_effect=given)
    assert stop.code == 2, stop.message
    assert stop.message.startswith("error: --min-effect: expected a fraction between 0 and 1")
    assert repr(given) in stop.message and "\n" not in stop.message


@pytest.mark.parametrize(("given", "effect"), [("0.05", 0.05), ("5%", 0.05), ("12.5%", 0.125)])
def test_a_min_effect_as_a_fraction_or_a_percentage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, effect: float
) -> None:
    asked = []

    def regression_check(root: Path, run_id: object, labels: dict, min_effect: float) -> None:
        asked.append(min_effect)
        raise RunNotFound("stop here")

    monkeypatch.setattr(checking, "regression_check", regression_check)
    assert exit_of("check", tmp_path, min_effect=given).code == 2
    assert asked == [pytest.approx(effect)]


def test_the_fabfile_loads_the_statistics_only_for_a_check() -> None:
    """``fab check``'s regression_check (controller/analysis/check.py) is imported when the
    task runs: every other task starts without numpy."""
    import subprocess
    import sys

    code = "import sys, fabfile; print('numpy' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
