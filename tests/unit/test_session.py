"""Which run a task continues: --run, then the chained command's own, then bench.run."""

from __future__ import annotations

from pathlib import Path

import pytest

from parbench.controller.nodes.fleet import Fleet, current, using
from parbench.controller.run.inventory import load
from parbench.controller.run.rundir import RunDir, RunNotFound


@pytest.fixture
def inventory(tmp_path: Path):
    (tmp_path / "ref.txt").write_text("reference")
    (tmp_path / "inv.yaml").write_text("defaults: {data: ref.txt}\nnodes: [{id: a, host: h}]\n")
    return load(tmp_path / "inv.yaml")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"  # each test is a fresh `fab` command (conftest's fleet)


def test_a_configured_run_never_takes_over_a_chained_command(inventory, results) -> None:
    today = lambda: inventory  # noqa: E731
    old = current().runs.start(inventory, results)
    with using(Fleet()):  # the next `fab write read verify`
        new = current().runs.start(inventory, results)
        assert new.run_id != old.run_id
        assert current().runs.current(today, results, None, configured=old.run_id) == new
        assert (
            current().runs.current(today, results, old.run_id, configured=None).run_id == old.run_id
        )


def test_a_configured_run_is_continued_by_a_later_command(inventory, results) -> None:
    old = current().runs.start(inventory, results)
    current().runs.start(inventory, results)
    with using(Fleet()):  # a later command
        chosen = current().runs.current(lambda: inventory, results, None, configured=old.run_id)
    assert chosen.run_id == old.run_id


def test_without_any_run_the_error_says_to_write_first(inventory, results) -> None:
    with pytest.raises(RunNotFound, match="run `fab write` first"):
        current().runs.current(lambda: inventory, results)
    assert current().runs.current(lambda: inventory, results, create=True).path.is_dir()


@pytest.mark.parametrize("bad", ["../elsewhere", "/etc", "a/b", ".hidden", ""])
def test_a_run_id_is_one_folder_of_results_never_a_path(tmp_path: Path, bad: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(RunNotFound, match="--run must be a run id"):
        RunDir.open(tmp_path / "results", bad)


def test_a_run_json_changed_since_it_was_sealed_is_not_continued(inventory, results) -> None:
    import json

    from parbench.controller.run.seal import RunAltered

    with using(Fleet()):
        old = current().runs.start(inventory, results)
    # a later `fab meta`, `fab verify`: this test's command
    doc = json.loads((old.path / "run.json").read_text())
    doc["requests"]["meta"]["a"]["clients"][0]["path"] = "/precious"
    (old.path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(RunAltered, match=r"node a, phase meta: requests\.meta\.a\.clients\[0\]"):
        current().runs.current(lambda: inventory, results, old.run_id)
    assert current().runs.active(results) is None


def test_two_commands_in_one_process_do_not_see_each_others_run(inventory, results) -> None:
    """The run a command started is part of its own state (its fleet), not the process's:
    another command in the same process (a test, an embedding program) starts afresh."""
    with using(Fleet()):
        first = current().runs.start(inventory, results)
        with using(Fleet()):  # another command, while the first is still at work
            assert current().runs.active(results) is None
            second = current().runs.start(inventory, results)
            assert current().runs.current(lambda: inventory, results) is second
        assert current().runs.active(results) is first
        assert current().runs.current(lambda: inventory, results) is first
