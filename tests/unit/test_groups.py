"""Many nodes saying the same thing, one line (controller/output/groups.py): records not ok
grouped by cause, the slowest clients named, `fab clean` in one line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from parbench.controller import commands, phases
from parbench.controller.analysis.stats import Failure, summarise
from parbench.controller.nodes import locks, remote
from parbench.controller.output import console
from parbench.controller.output.block import failure_lines, phase_block
from parbench.controller.run.inventory import load

from .test_clean import CleanConnection
from .test_orchestration import World
from .test_report import MIB, rec


def test_records_not_ok_on_10_nodes_with_one_cause_are_one_line() -> None:
    errors = [
        Failure(f"n{k}", c, f"/b/n{k}/{c}", "error",
                f"h{k}: /b/n{k}/{c}: refused by h{k}:39999 after {c} tries", f"h{k}")
        for k in range(10) for c in range(4)
    ]  # fmt: skip
    assert failure_lines([], errors) == [
        "  n[0-9] (10 nodes): 40 records not ok, e.g. n0/0 (h0): error: refused by h0:39999"
        " after 0 tries"
    ]


def test_ten_causes_of_records_are_ten_lines_and_more_are_counted() -> None:
    errors = [Failure(f"n{k}", 0, "/p", "error", f"cause-{'abcdefghijkl'[k]}") for k in range(12)]
    lines = failure_lines([], errors)
    assert len(lines) == 11 and lines[0] == "  n0: 1 record not ok, e.g. n0/0: error: cause-a"
    assert lines[-1].startswith("  and 2 more causes on n[10-11]")


def test_the_block_names_the_slowest_clients() -> None:
    records = [
        rec(f"n{k}", c, bytes=(10 + k + c) * MIB, start=100.0, end=101.0)
        for k in range(12) for c in range(2)
    ]  # fmt: skip
    client = [line for line in phase_block(summarise(records)) if "per client" in line]
    assert client[0].endswith("slowest: n0/0 10.0 MiB/s, n0/1 11.0 MiB/s, n1/0 11.0 MiB/s")


class Saying(CleanConnection):
    def run(self, command: str, **kwargs) -> SimpleNamespace:  # type: ignore[override]
        super().run(command, **kwargs)
        k = int(self.node[1:])
        said = f"clean {'deleted' if k < 60 else 'absent'} /bench/{self.node}\n"
        said += f"clean deleted 2 read copies in /w/{self.node}/read\n"
        return SimpleNamespace(stdout=said, stderr="", exited=0)


@pytest.mark.parametrize("level", ["default", "verbose"])
def test_clean_on_64_nodes_is_one_line(level, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    world = World()
    monkeypatch.setattr(console, "_level", level, raising=False)
    monkeypatch.setattr(remote, "connect", lambda inv, node: Saying(world, node.id))
    monkeypatch.setattr(phases, "push", lambda inv, run=None, data=True, held=None: list(inv.nodes))
    monkeypatch.setattr(locks, "hold", lambda inv, run_id, nodes: SimpleNamespace(release=list))
    monkeypatch.setattr(locks, "held_runs", lambda: ())
    (tmp_path / "ref.txt").write_text("12345")
    listed = "\n".join(f"  - {{id: n{k}, host: h{k}, workdir: /w/n{k}}}" for k in range(64))
    (tmp_path / "inv.yaml").write_text(
        f"defaults: {{dst: /bench, data: ref.txt}}\nnodes:\n{listed}\n"
    )
    capsys.readouterr()
    commands.clean(load(tmp_path / "inv.yaml"))
    lines = capsys.readouterr().out.splitlines()
    if level == "verbose":
        assert len(lines) == 128 and "[n63] clean absent /bench/n63" in lines
    else:
        assert lines == [
            "clean on 64 nodes: deleted 128 read copies in /w/<node>/read;"
            " deleted /bench/<node> on n[0-59]; absent /bench/<node> on n[60-63]"
        ]


def test_the_block_says_the_access_path_when_it_is_not_the_rest_proxy() -> None:
    """Runs through s3, posix or native are told apart on sight: their headline says so
    (the REST proxy, the default, says nothing, as before)."""
    from dataclasses import replace

    records = [
        rec(f"n{k}", c, bytes=MIB, start=100.0, end=101.0) for k in range(2) for c in range(2)
    ]
    summary = summarise(records)
    s3 = replace(summary, config={**summary.config, "backend": "s3", "bytes": MIB})
    assert phase_block(s3)[0].startswith("write: 2 nodes, 4 clients, 1.00 MiB files through s3; ")
    rest = replace(summary, config={**summary.config, "backend": "alluxio", "bytes": MIB})
    assert phase_block(rest)[0].startswith("write: 2 nodes, 4 clients, 1.00 MiB files; ")


@pytest.mark.parametrize("level", ["quiet", "default", "verbose"])
def test_a_cause_quoting_terminal_escapes_reaches_the_console_made_visible(level, capsys) -> None:
    """A storage error can quote anything a node or server sent: an OSC sequence that
    retitles the terminal, a colour, a bell. Whatever the level, the console shows them as
    text (``\\x1b``), never acts on them."""
    hostile = "h: /p: boom \x1b]0;owned\x07 \x1b[31mred\x1b[0m \x9b2J"
    records = [
        rec("n0", 0, bytes=MIB, start=100.0, end=101.0),
        rec("n0", 1, status="error", error=hostile),
    ]
    console.set_level(level)
    try:
        console.phase_end([summarise(records)], [], "table: " + hostile)
    finally:
        console.set_level("default")
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "boom" in text
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b]0;owned\\x07" in text
