"""What defines a phase (its config hash), and when its figures cannot be trusted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from controller.analysis.stats import summarise
from controller.analysis.validity import config_hash, judge, phase_config
from controller.run.inventory import LabelError, load, parse_labels
from controller.run.plan import ReferenceFacts
from controller.run.rounds import Rounds
from controller.run.rundir import NodeFailure
from worker.results import ClientResult

REF = ReferenceFacts("/ctl/ref.txt", 1000, "ab" * 32)


def inventory(tmp_path: Path, text: str = ""):
    path = tmp_path / "inventory.yaml"
    path.write_text(text + "nodes:\n  - {id: n0, host: a}\n  - {id: n1, host: b, clients: 3}\n")
    return load(path)


def test_the_config_hash_follows_what_defines_the_benchmark(tmp_path: Path) -> None:
    base = inventory(tmp_path)
    config = phase_config(base, REF, "write", Rounds())
    assert config["clients"] == [2, 3] and config["write_type"] == "CACHE_THROUGH"
    same = phase_config(
        inventory(tmp_path, "defaults: {dst: /elsewhere, connect_timeout: 60}\nlabels: {a: b}\n"),
        REF,
        "write",
        Rounds(),
    )
    assert config_hash(same) == config_hash(config)
    for changed in (
        phase_config(
            inventory(tmp_path, "defaults: {write_type: MUST_CACHE}\n"), REF, "write", Rounds()
        ),
        phase_config(base, replace(REF, bytes=2000), "write", Rounds()),
        phase_config(base, REF, "write", Rounds(iterations=3)),
        phase_config(base, REF, "read", Rounds()),
    ):
        assert config_hash(changed) != config_hash(config)
    assert phase_config(base, REF, "read", Rounds(), "same")["read_mode"] == "same"
    assert len(config_hash(config)) == 16


def rec(client: int, start: float, **kw: object) -> ClientResult:
    return ClientResult(
        run_id="r",
        phase="write",
        node="n0",
        client=client,
        host="h",
        backend="alluxio",
        path=f"/p/n0/{client}",
        bytes=100,
        start=start,
        end=start + 1.0,
        **kw,  # type: ignore[arg-type]
    )


def test_judge_names_every_reason() -> None:
    good = summarise([rec(0, 10.0), rec(1, 10.01)])
    assert judge(good, 2, [], 0.1, 0.0) == ()
    skewed = summarise([rec(0, 10.0), rec(1, 10.25)])
    assert judge(skewed, 2, [], 0.1, 0.0) == ("start skew 250.0 ms > max_start_skew 100 ms",)
    lost = [NodeFailure("n1", "u@b:22", "write", "connection lost")]
    short = judge(summarise([rec(0, 10.0)]), 2, lost, 0.1, 5.0)
    assert short == (
        "node(s) lost: n1",
        "1 of 2 clients ran ok",
        "lasted 1.000 s < min_phase_seconds 5 s",
    )
    assert judge(summarise([], "write"), 2, [], 0.1, 0.0) == ("no iteration was measured",)
    two = summarise(
        [rec(0, 10.0, iteration=0), rec(0, 20.0, iteration=1), rec(1, 20.5, iteration=1)]
    )
    assert judge(two, 2, [], 0.1, 0.0) == (
        "iteration 1: 1 of 2 clients ran ok",
        "iteration 2: start skew 500.0 ms > max_start_skew 100 ms",
    )


def test_labels_from_the_command_line_and_the_inventory(tmp_path: Path) -> None:
    assert parse_labels(["cluster=prod", "build=42", "empty="]) == {
        "cluster": "prod",
        "build": "42",
        "empty": "",
    }
    with pytest.raises(LabelError, match="--label: expected KEY=VALUE, got 'cluster'"):
        parse_labels(["cluster"])
    with pytest.raises(LabelError, match="--label 9x: expected a label name matching"):
        parse_labels(["9x=1"])
    assert inventory(tmp_path, "labels: {cluster: prod, build: 42}\n").labels == {
        "cluster": "prod",
        "build": "42",
    }
    with pytest.raises(ValueError, match="labels.site: expected a string, got a list"):
        inventory(tmp_path, "labels: {site: [1]}\n")
