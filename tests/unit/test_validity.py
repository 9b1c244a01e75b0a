"""What defines a phase (its config hash), and when its figures cannot be trusted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from parbench.controller.analysis.stats import summarise
from parbench.controller.analysis.validity import config_hash, judge, phase_config
from parbench.controller.run.inventory import load
from parbench.controller.run.iterations import IterationPlan
from parbench.controller.run.labels import LabelError, parse_labels
from parbench.controller.run.plan import ReferenceFacts
from parbench.controller.run.rundir import NodeFailure
from parbench.worker.protocol import PHASES
from parbench.worker.results import ClientResult

REF = ReferenceFacts("/ctl/ref.txt", 1000, "ab" * 32)


def inventory(tmp_path: Path, text: str = ""):
    path = tmp_path / "inventory.yaml"
    path.write_text(text + "nodes:\n  - {id: n0, host: a}\n  - {id: n1, host: b, clients: 3}\n")
    return load(path)


def test_the_config_hash_follows_what_defines_the_benchmark(tmp_path: Path) -> None:
    base = inventory(tmp_path)
    config = phase_config(base, REF, "write", IterationPlan())
    assert config["clients"] == [2, 3] and config["write_type"] == "CACHE_THROUGH"
    same = phase_config(
        inventory(tmp_path, "defaults: {dst: /elsewhere, connect_timeout: 60}\nlabels: {a: b}\n"),
        REF,
        "write",
        IterationPlan(),
    )
    assert config_hash(same) == config_hash(config)
    for changed in (
        phase_config(
            inventory(tmp_path, "defaults: {write_type: MUST_CACHE}\n"),
            REF,
            "write",
            IterationPlan(),
        ),
        phase_config(base, replace(REF, bytes=2000), "write", IterationPlan()),
        phase_config(base, REF, "write", IterationPlan(iterations=3)),
        phase_config(base, REF, "read", IterationPlan()),
    ):
        assert config_hash(changed) != config_hash(config)
    assert phase_config(base, REF, "read", IterationPlan(), "same")["read_mode"] == "same"
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


OTHER = (
    "defaults: {backend: posix, posix_root: /mnt, chunk_size: 64KiB, latency: false,"
    " until_stable: 0.05, duration: 30s, meta_files: 7, meta_size: 10, read_type: NO_CACHE,"
    " write_type: THROUGH}\n"
)
#: config hashes computed before the config came from the settings' ``config`` flag: an
#: unchanged inventory keeps its hash (history compares runs by it)
PINNED = {
    ("", "write", None, 1): "8557c3b911320a1f",
    ("", "write", None, 3): "e642acbbe176ef1f",
    ("", "read", None, 1): "18f5f475f444e581",
    ("", "read", None, 3): "b974cff44357809e",
    ("", "read", "same", 1): "c89130dcfce9c1f7",
    ("", "read", "same", 3): "a88b01551a448106",
    ("", "meta", None, 1): "44335afa26fbecd6",
    ("", "meta", None, 3): "07ea1e70e405c137",
    (OTHER, "write", None, 1): "349af2a3110af973",
    (OTHER, "write", None, 3): "fe93609e26766b45",
    (OTHER, "read", None, 1): "5445d9e58a68470e",
    (OTHER, "read", None, 3): "2787b70400ea656c",
    (OTHER, "read", "same", 1): "90d014641193046e",
    (OTHER, "read", "same", 3): "3cbc03edda3b952e",
    (OTHER, "meta", None, 1): "39f967b57ef3dc97",
    (OTHER, "meta", None, 3): "6c62baf21cdabc87",
}


@pytest.mark.parametrize("key", sorted(PINNED, key=repr))
def test_an_unchanged_inventory_keeps_its_config_hash(tmp_path: Path, key: tuple) -> None:
    text, phase, read_mode, iterations = key
    rounds = IterationPlan() if iterations == 1 else IterationPlan(iterations=3, warmup=1)
    config = phase_config(inventory(tmp_path, text), REF, phase, rounds, read_mode)
    assert config_hash(config) == PINNED[key]


def test_the_config_is_the_settings_declared_part_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parbench.controller.analysis import validity
    from parbench.controller.run import settings

    base = inventory(tmp_path)
    assert "on_existing" not in phase_config(base, REF, "write", IterationPlan())
    # a setting declared part of the config is in it, with nothing else to change
    declared = tuple(
        replace(s, config=True) if s.name == "on_existing" else s for s in settings.SETTINGS
    )
    monkeypatch.setattr(validity, "SETTINGS", declared)
    assert phase_config(base, REF, "write", IterationPlan())["on_existing"] == "replace"
    # and one declared not part of it is not
    undeclared = tuple(
        replace(s, config=False) if s.name == "latency" else s for s in settings.SETTINGS
    )
    monkeypatch.setattr(validity, "SETTINGS", undeclared)
    assert "latency" not in phase_config(base, REF, "write", IterationPlan())
    # the rounds the config has are those settings
    assert len(validity.ROUND_SETTINGS) == len(IterationPlan().to_dict())
    assert all(settings.BY_NAME[n].config for n in validity.ROUND_SETTINGS)


def test_the_phases_a_setting_counts_for_are_part_of_its_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which phases' config a setting is part of is said where it is declared
    (controller/run/settings.py), not in validity.py."""
    from parbench.controller.analysis import validity
    from parbench.controller.run import settings

    base = inventory(tmp_path)
    assert "write_type" not in phase_config(base, REF, "read", IterationPlan())
    declared = tuple(
        replace(s, phases=("write", "read")) if s.name == "write_type" else s
        for s in settings.SETTINGS
    )
    monkeypatch.setattr(validity, "SETTINGS", declared)
    assert phase_config(base, REF, "read", IterationPlan())["write_type"] == "CACHE_THROUGH"
    assert "write_type" not in phase_config(base, REF, "meta", IterationPlan())
    known = set(PHASES)
    assert all(set(s.phases) <= known for s in settings.SETTINGS)
