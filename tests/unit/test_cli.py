"""The ``parbench`` console program (parbench/cli.py): fab's program with parbench's tasks
built in, its own version, and ``-i/--inventory`` as a core option (config
``bench.inventory``); fab's ``-i`` (an SSH key) is ``--identity`` only, and refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parbench import cli, tasks


def _run(*argv: str) -> int:
    """``parbench ARGV``: its exit code (0 when it returns without exiting)."""
    try:
        cli.make_program().run(["parbench", *argv])
    except SystemExit as end:
        return int(end.code or 0)
    return 0


def test_the_program_lists_the_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--list") == 0
    out = capsys.readouterr().out
    for name in ("push", "write", "read", "verify", "report", "history", "nightly", "clean"):
        assert f"\n  {name} " in out, name


def test_version_is_parbenchs_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(cli, "version", lambda name: asked.append(name) or "7.8.9")
    assert _run("--version") == 0
    assert asked == ["parbench"]
    assert capsys.readouterr().out.splitlines()[0] == "parbench 7.8.9"


def test_version_outside_an_install_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(cli, "version", missing)
    assert cli.parbench_version() == "unknown (not installed)"


def _pushed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Where ``push`` would load its inventory from (nothing is loaded or pushed)."""
    loaded: list[Any] = []
    monkeypatch.setattr(tasks, "load", lambda path, flags=None: loaded.append(path) or path)
    monkeypatch.setattr(tasks.commands, "push_all", lambda inventory: None)
    monkeypatch.delenv("FABRIC_BENCH_INVENTORY", raising=False)
    return loaded


@pytest.mark.parametrize("flag", ["-i", "--inventory"])
def test_the_inventory_option_sets_bench_inventory(
    monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    loaded = _pushed(monkeypatch)
    assert _run(flag, "prod.yaml", "push") == 0
    assert loaded == ["prod.yaml"]


def test_the_inventory_option_beats_the_environment_and_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = _pushed(monkeypatch)
    monkeypatch.setenv("FABRIC_BENCH_INVENTORY", "from-env.yaml")
    assert _run("push") == 0 and _run("-i", "given.yaml", "push") == 0
    monkeypatch.delenv("FABRIC_BENCH_INVENTORY")
    assert _run("push") == 0
    assert loaded == ["from-env.yaml", "given.yaml", "inventory.yaml"]


def test_the_inventory_option_holds_for_a_whole_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = _pushed(monkeypatch)
    assert _run("-i", "chain.yaml", "push", "push") == 0
    assert loaded == ["chain.yaml", "chain.yaml"]


def test_an_ssh_key_given_to_parbench_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _pushed(monkeypatch)
    assert _run("--identity", "key", "push") == 2
    said = capsys.readouterr().err
    assert "parbench's SSH keys come from the inventory" in said
    assert "-i/" not in said  # under parbench, -i is the inventory: the key option is --identity


def test_main_runs_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(cli.Parbench, "run", lambda self, argv=None: ran.append(argv))
    cli.main(["parbench", "--list"])
    assert ran == [["parbench", "--list"]]
