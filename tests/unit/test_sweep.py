"""fab sweep's points: the matrix, each point a checked inventory, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from parbench.controller.run.inventory import load
from parbench.controller.sweep import SweepError, parse_axes, points

from .fabtasks import exit_of


@pytest.fixture
def base(tmp_path: Path):
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "defaults: {clients: 2}\nnodes:\n  - {id: n0, host: a, clients: 3}\n  - {id: n1, host: b}\n"
    )
    return load(path)


def test_every_combination_in_order(base) -> None:
    axes = parse_axes({"size": "1MiB, 64MiB", "clients": "1,4", "read_type": None})
    found = points(base, axes)
    assert [p.name for p in found] == [
        "size=1MiB,clients=1",
        "size=1MiB,clients=4",
        "size=64MiB,clients=1",
        "size=64MiB,clients=4",
    ]
    last = found[-1].inventory
    assert last.settings.data == 64 << 20
    assert [n.clients for n in last.nodes] == [4, 4]  # a node's own count gives way
    assert base.settings.data != 64 << 20  # the user's inventory is untouched
    assert points(base, {"size": ["1048576"]})[0].inventory.settings.data == 1 << 20


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"write_type": "FAST"}, "--write-type FAST: "),
        ({"size": "data/5mb.txt"}, "--size data/5mb.txt: expected a size like 64MiB"),
        ({"clients": "two"}, "--clients two: expected a whole number"),
        ({"chunk_size": "1"}, "--chunk-size 1: "),
        ({"size": "1MiB,"}, "--size: an empty value in '1MiB,'"),
        ({}, "give at least one of --size, --clients"),
    ],
)
def test_a_bad_value_is_refused_naming_it(base, given: dict, message: str) -> None:
    with pytest.raises(SweepError) as info:
        points(base, parse_axes(given))
    assert message in str(info.value)


@pytest.mark.parametrize("given", ["²", "1Gb", "10.5", "0.5B", "٣MiB", "0x10"])
def test_a_size_is_always_a_size_never_a_file(base, given: str) -> None:
    (Path(base.path).parent / given).write_text("a file of that name")  # still not taken
    with pytest.raises(SweepError) as info:
        points(base, parse_axes({"size": given}))
    message = str(info.value)
    assert message.startswith(f"--size {given}: expected a")
    assert "reference file" not in message and "\n" not in message


def test_sizes_in_the_inventorys_grammar(base) -> None:
    found = points(base, parse_axes({"size": "1.5MiB,2KB,10B,7,4K"}))
    assert [p.inventory.settings.data for p in found] == [1536 * 1024, 2000, 10, 7, 4096]


@pytest.mark.parametrize("given", ["²", "1Gb"])
def test_fab_sweep_refuses_a_bad_size_with_exit_2(tmp_path: Path, given: str) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("nodes:\n  - {id: n0, host: a}\n")
    stop = exit_of("sweep", tmp_path, inventory, size=given)
    assert stop.code == 2 and stop.message.startswith(f"error: --size {given}: expected a")


def test_a_sweep_over_backends_runs_the_same_workload_through_each(base, tmp_path) -> None:
    found = points(base, parse_axes({"backend": "alluxio,s3", "size": "1MiB"}))
    assert [(p.name, p.inventory.settings.backend) for p in found] == [
        ("backend=alluxio,size=1MiB", "alluxio"),
        ("backend=s3,size=1MiB", "s3"),
    ]
    assert {p.inventory.settings.data for p in found} == {1 << 20}
    with pytest.raises(SweepError, match="--backend hdfs: "):
        points(base, parse_axes({"backend": "alluxio,hdfs"}))


def test_backends_with_the_native_client_are_compared_to_it_by_default(base) -> None:
    """The native client is the ceiling: every path's ratio to it, unless --baseline says
    another point; a sweep without it has no baseline of its own."""
    from parbench.controller.sweep import Point, parse_baseline

    def swept(*backends: str) -> list:
        return [Point({"backend": b, "clients": c}, base) for b in backends for c in ("1", "4")]

    assert parse_baseline(None, swept("alluxio", "s3", "native")) == {"backend": "native"}
    assert parse_baseline(None, swept("alluxio", "s3")) is None
    assert parse_baseline(None, swept("native")) is None
    given = parse_baseline("backend=s3", swept("alluxio", "s3", "native"))
    assert given == {"backend": "s3"}
