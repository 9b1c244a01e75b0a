"""The metadata phase: a client's create/stat/list/delete on the posix backend, the
ops/s summary and its table."""

from __future__ import annotations

from pathlib import Path

from parbench.controller.analysis.metastats import summarise_meta
from parbench.controller.output.report import meta_table
from parbench.worker.clients import Identity
from parbench.worker.meta import MetaJob
from parbench.worker.protocol import Measure, StorageConfig, meta_folder
from parbench.worker.results import ClientResult


def job(tmp_path: Path, files: int = 5, size: int = 3) -> MetaJob:
    folder = meta_folder("/m", "n0", 1)
    identity = Identity("r", "meta", "n0", 1, "hostA", "posix", folder)
    config = StorageConfig(backend="posix", root=str(tmp_path))
    return MetaJob(identity, config, files, size, Measure())


def test_a_client_does_every_kind_in_turn_and_leaves_nothing(tmp_path: Path) -> None:
    assert meta_folder("/m", "n0", 1) == "/m/n0/1.meta"
    (tmp_path / "m" / "n0" / "1.meta").mkdir(parents=True)
    (tmp_path / "m" / "n0" / "1.meta" / "f0").write_text("an earlier run's")
    result = job(tmp_path)()
    assert result.ok, result.error
    assert {kind: op["count"] for kind, op in result.ops.items()} == {
        "create": 5, "stat": 5, "list": 1, "delete": 5
    }  # fmt: skip
    assert result.ops["create"]["end"] <= result.ops["stat"]["start"]
    assert {k: v["count"] for k, v in result.latency.items()} == {
        "create": 5, "stat": 5, "list": 1, "delete": 5
    }  # fmt: skip
    assert (result.files, result.bytes) == (5, 15)
    assert not (tmp_path / "m" / "n0" / "1.meta").exists()


def test_a_failure_says_how_far_it_got(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("a file where the directory goes")
    result = job(tmp_path)()
    assert result.status == "error" and result.error.startswith("hostA: /m/n0/1.meta: ")


def rec(node: str, client: int, creates: tuple[float, float], offset: float = 0.0) -> ClientResult:
    ops = {
        "create": {"count": 10, "start": creates[0], "end": creates[1]},
        "stat": {"count": 10, "start": creates[1], "end": creates[1] + 0.5},
        "list": {"count": 1, "start": creates[1] + 0.5, "end": creates[1] + 0.75},
        "delete": {"count": 10, "start": creates[1] + 0.75, "end": creates[1] + 1.75},
    }
    return ClientResult(
        run_id="r", phase="meta", node=node, client=client, host="h", backend="posix",
        path=f"/m/{node}/{client}.meta", files=10, start=creates[0], end=creates[1] + 1.75,
        ops=ops, clock_offset=offset,
    )  # fmt: skip


def test_rates_per_kind_over_its_span_on_the_controller_clock() -> None:
    # n1 runs 100 s ahead: its creates 100..102 are 0..2 here, alongside n0's 0..1
    s = summarise_meta([rec("n0", 0, (0.0, 1.0)), rec("n1", 0, (100.0, 102.0), offset=100.0)])
    assert (s.ops["create"].count, s.ops["create"].seconds, s.ops["create"].rate) == (20, 2.0, 10.0)
    assert s.per_node["n0"]["create"].rate == 10.0 and s.per_node["n1"]["create"].rate == 5.0
    assert s.per_client["create"].max == 10.0 and s.files == 10 and s.start_skew == 0.0
    table = meta_table(s).splitlines()
    assert table[0] == "meta: 2 clients, 10 files each; ok 2, errors 0, start skew 0.0 ms"
    assert table[2].split() == ["create", "20", "2.000", "10.0", "-", "-"]
    assert table[-3].split() == ["node", "create", "stat", "list", "delete"]
    assert table[-2].split() == ["n0", "10.0", "20.0", "4.0", "10.0"]


def test_a_kind_that_fails_keeps_its_span_and_the_directory_goes(
    tmp_path: Path, monkeypatch
) -> None:
    from parbench.worker.storage import PosixStorage

    calls = []

    def failing_size(self, path: str) -> int:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        return 0

    monkeypatch.setattr(PosixStorage, "size", failing_size)
    result = job(tmp_path)()
    assert result.status == "error" and "after 5 create, 2 stat" in result.error
    assert result.error.endswith("; /m/n0/1.meta removed")
    assert (
        result.ops["stat"]["count"] == 2
        and result.ops["stat"]["end"] >= result.ops["stat"]["start"]
    )
    assert not (tmp_path / "m" / "n0" / "1.meta").exists()
