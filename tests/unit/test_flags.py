"""The workload flags (``fab write --clients 3 --size 8MiB``): derived from the settings'
declarations, over the inventory's defaults, checked as the YAML key is and naming the
flag, sealed in the run; the tasks' options: help with units, ranges and choices, counts
as INT, short flags that clash with nothing, ``-h`` help everywhere, ``-H`` refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fabric.main import make_program
from invoke import Exit

from parbench import tasks as fabfile
from parbench.controller.run.inventory import load
from parbench.controller.run.settings import SETTINGS
from parbench.worker.protocol import PhaseRequest

from . import test_fleet
from .fabtasks import context, exit_of
from .test_orchestration import INVENTORY, World

#: the fake nodes (the push, the barrier, the workers' records, in this process)
world, probes = test_fleet.world, test_fleet.probes
#: fab's own short options (fab --help)
CORE = set("cdDefFhHilpPrRSTtVw")


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "ref.txt").write_text("12345")
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY.replace("workdir: /w/n1}", "workdir: /w/n1, clients: 5}"))
    return path


def _sent(nodes: World, phase: str) -> list[PhaseRequest]:
    """The requests of ``phase`` the nodes were sent."""
    found = []
    for event in nodes.log:
        if event[1] == "run" and " -m worker run " in event[2]:
            path = event[2].split(" -m worker run ")[1].split()[0].strip("'")
            request = PhaseRequest.from_json(nodes.files[path])
            if request.phase == phase:
                found.append(request)
    return found


def test_fab_write_clients_and_size_go_to_the_nodes_and_into_the_run(
    world: World,
    probes: Counter,
    inventory: Path,
    tmp_path: Path,
) -> None:
    fabfile.write(context(tmp_path, inventory), clients="3", size="8MiB")
    sent = _sent(world, "write")
    assert sorted(r.node for r in sent) == ["n0", "n1"]
    for request in sent:  # n1's own clients: 5 gives way to the flag
        assert len(request.clients) == 3
        assert request.reference is not None and request.reference.bytes == 8 << 20
    [run] = [p for p in (tmp_path / "results").iterdir() if p.name[0].isdigit()]
    sealed = json.loads((run / "run.json").read_text())
    assert sealed["inventory"]["settings"]["clients"] == 3
    assert sealed["inventory"]["settings"]["data"] == 8 << 20
    assert [n["clients"] for n in sealed["inventory"]["nodes"]] == [3, 3]
    assert sealed["inventory"]["flags"] == {"clients": 3, "data": 8 << 20}
    for request in sealed["requests"]["write"].values():
        assert len(request["clients"]) == 3 and request["reference"]["bytes"] == 8 << 20


def test_a_later_read_of_the_run_uses_its_sealed_flags(
    world: World,
    probes: Counter,
    inventory: Path,
    tmp_path: Path,
) -> None:
    fabfile.write(context(tmp_path, inventory), clients="3", write_type="THROUGH")
    world.log.clear()
    fabfile.read(context(tmp_path, inventory))  # another command: today's inventory has 2
    sent = _sent(world, "read")
    assert sent and all(len(r.clients) == 3 for r in sent)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clients": "x"}, "error: --clients: expected an integer"),
        ({"clients": "0"}, "error: --clients: expected an integer between 1 and 1024, got 0"),
        ({"size": "data/5mb.txt"}, "error: --size: expected a size"),
        ({"chunk_size": "1"}, "error: --chunk-size: expected a size between 4096"),
        ({"write_type": "FAST"}, "error: --write-type: expected one of CACHE_THROUGH"),
        ({"until_stable": "2"}, "error: --until-stable: expected null or a coefficient"),
        ({"size": "1MiB", "data": "ref.txt"}, "error: --size, --data: give one of them"),
    ],
)
def test_a_bad_flag_exits_2_naming_it(
    inventory: Path, tmp_path: Path, options: dict, message: str
) -> None:
    stop = exit_of("write", tmp_path, inventory, **options)
    assert stop.code == 2 and stop.message.startswith(message), stop.message
    assert "\n" not in stop.message


def test_a_flag_overrides_the_defaults_and_each_nodes_own_value(inventory: Path) -> None:
    loaded = load(inventory, {"clients": "4", "chunk_size": "64KiB", "backend": None})
    assert [n.clients for n in loaded.nodes] == [4, 4]
    assert loaded.settings.chunk_size == 64 << 10 and loaded.settings.backend == "alluxio"
    assert load(inventory).flags == {} and [n.clients for n in load(inventory).nodes] == [2, 5]


def test_every_flagged_setting_is_an_option_of_the_workload_tasks() -> None:
    flagged = {s.name for s in SETTINGS if s.flag}
    options = {a.attr_name or a.name for a in fabfile.write.get_arguments()}
    assert flagged - {"meta_files", "meta_size"} <= options and "size" in options
    assert {"clients", "backend", "meta_files"} <= {
        a.attr_name or a.name for a in fabfile.meta.get_arguments()
    }
    nightly = {a.attr_name or a.name for a in fabfile.nightly.get_arguments()}
    assert {"clients", "size", "until_stable", "duration"} <= nightly
    sweep = {a.attr_name or a.name for a in fabfile.sweep.get_arguments()}
    assert {"backend", "until_stable", "iterations"} <= sweep  # besides its axes
    read = {a.attr_name or a.name for a in fabfile.read.get_arguments()}
    assert {"iterations", "until_stable"} <= read and "clients" not in read


def test_the_help_says_units_ranges_choices_and_the_default() -> None:
    arguments = {a.names[0]: a for a in fabfile.write.get_arguments()}
    assert arguments["write-type"].help.startswith(
        "Alluxio write type: CACHE_THROUGH|MUST_CACHE|THROUGH|ASYNC_THROUGH"
    )
    assert "(default: from the inventory, else CACHE_THROUGH)" in arguments["write-type"].help
    assert "4KiB to 1GiB" in arguments["chunk-size"].help
    assert "1 to 1024" in arguments["clients"].help
    for name in ("clients", "iterations", "warmup"):
        assert arguments[name].kind is int, name  # shown as INT
    assert fabfile.history_.get_arguments()  # help asked twice is still there
    assert {a.names[0]: a for a in fabfile.write.get_arguments()}["clients"].help


def test_fab_list_shows_a_whole_sentence_per_task() -> None:
    for task in fabfile.ns.tasks.values():
        lines = task.__doc__.strip().splitlines()
        assert lines[0].endswith("."), lines[0]
        assert len(lines) == 1 or not lines[1].strip(), task.name


def test_no_short_flag_clashes_with_fabs_nor_between_tasks() -> None:
    meaning: dict[str, str] = {}
    for task_name in fabfile.ns.task_names:
        for argument in fabfile.ns[task_name].get_arguments():
            for short in (n for n in argument.names if len(n) == 1):
                assert short not in CORE, f"{task_name} -{short}"
                assert meaning.setdefault(short, argument.names[0]) == argument.names[0]
    assert meaning == {"n": "clients", "s": "size", "b": "chunk-size"}


def _fab(argv: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """``fab ARGV`` in this process: its exit code and what it printed."""
    program = make_program()
    program.namespace = fabfile.ns
    with pytest.raises(SystemExit) as info:
        program.run(["fab", *argv])
    said = capsys.readouterr()
    return info.value.code or 0, said.out + said.err


def test_fab_report_dash_h_shows_help(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    code, said = _fab(["report", "-h"], capsys)
    assert code == 0 and "Usage: fab" in said and "--html" in said
    assert not (tmp_path / "results").exists()


def test_fab_dash_h_hosts_is_refused_in_one_sentence(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    code, said = _fab(["-H", "a,b", "history"], capsys)
    assert code == 2
    assert said.strip().splitlines() == [
        "error: -H/--hosts: parbench runs on the nodes the inventory lists (nodes:); give them"
        " there and leave -H out"
    ]


def test_fab_dash_i_is_refused_naming_the_inventory_key(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    code, said = _fab(["-i", "key", "history"], capsys)
    assert code == 2 and "nodes[].key" in said and len(said.strip().splitlines()) == 1


def test_meta_chained_after_write_refuses_flags_of_its_own(
    world: World,
    probes: Counter,
    inventory: Path,
    tmp_path: Path,
) -> None:
    c = context(tmp_path, inventory)
    fabfile.write(c)
    with pytest.raises(Exit) as info:
        fabfile.meta(c, clients="3")
    assert info.value.code == 2 and "--clients: meta goes on in the run" in info.value.message


def test_the_derived_flags_name_each_option_once() -> None:
    from parbench.controller.run import flags as flagging

    names = [f.option for f in flagging.ALL.values()]
    assert len(names) == len(set(names)) and "size" in names
