"""The console's level: the config key bench.output for a whole chain, --verbose/--quiet
(long only: no short flag next to fab's own) for a task and the rest of the chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Config, Context, Exit

from parbench import tasks as fabfile
from parbench.controller.output import console


@pytest.fixture(autouse=True)
def level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_level", "default", raising=False)
    monkeypatch.setattr(console, "_chosen", None, raising=False)


def _context(tmp_path: Path, output: str) -> Context:
    bench = {"inventory": str(tmp_path / "none.yaml"), "results": str(tmp_path / "r"),
             "run": None, "history": None, "output": output}  # fmt: skip
    return Context(Config(overrides={"bench": bench}))


def test_an_unknown_level_is_bad_input_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(Exit) as info:
        fabfile.push(_context(tmp_path, "loud"))
    assert info.value.code == 2 and "bench.output (FABRIC_BENCH_OUTPUT)" in str(info.value.message)


def test_a_flag_holds_for_the_rest_of_the_chain_over_the_config(tmp_path: Path) -> None:
    c = _context(tmp_path, "quiet")
    with pytest.raises(Exit):  # no inventory: the level is set before
        fabfile.push(c)
    assert console.quiet()
    with pytest.raises(Exit):
        fabfile.write(c, verbose=True)
    with pytest.raises(Exit):
        fabfile.verify(c)  # chained after write --verbose
    assert console.verbose()


@pytest.mark.parametrize(
    "name", ["push", "write", "read", "verify", "report", "meta", "nightly", "clean"]
)
def test_verbose_and_quiet_have_no_short_flag(name: str) -> None:
    found = {a.name: a.names for a in getattr(fabfile, name).get_arguments()}
    assert found["verbose"] == ("verbose",) and found["quiet"] == ("quiet",)
