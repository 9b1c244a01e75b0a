"""push_node on this machine: a private new workdir, what tells nodes apart, and the
check for one machine listed twice."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from parbench.controller.nodes.push import NodeInfo, same_workdirs
from parbench.controller.nodes.remote import StepError
from parbench.worker import probe

from .fakewheels import tree
from .test_push_node import local_probe, run_push  # noqa: F401 - its fixture applies


def test_a_new_workdir_is_private_and_identified(tmp_path: Path) -> None:
    workdir = tmp_path / "new" / "work"
    info = run_push(tmp_path, workdir)
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((workdir / "runs").stat().st_mode) == 0o700
    # the probe ran before the workdir existed: the identity is the new directory's
    assert info.machine == probe.machine_id()
    assert info.workdir_id == (workdir.stat().st_dev, workdir.stat().st_ino)
    assert json.loads(json.dumps(info.to_dict()))["workdir_id"] == list(info.workdir_id)


def test_an_existing_workdir_keeps_its_mode(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o755)
    run_push(tmp_path, workdir)
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o755


def test_refuses_a_workdir_others_may_write(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    workdir.chmod(0o777)
    with pytest.raises(StepError, match=rf"^workdir {workdir} \(owner .*, mode 0777\) is writable"):
        run_push(tmp_path, workdir)
    assert tree(workdir) == {}


def info(machine: str | None, workdir_id: tuple[int, int] | None) -> NodeInfo:
    return NodeInfo("h", "Linux", "3.9.2", 0.0, 0.0, 0, False, machine, workdir_id)


def test_same_workdirs_pairs_one_directory_of_one_machine() -> None:
    infos = {
        "n0": info("m1", (10, 100)),
        "n1": info("m2", (10, 100)),  # another machine: same numbers, other directory
        "n2": info("m1", (10, 101)),  # same machine, other directory
        "n3": info("m1", (10, 100)),
        "n4": info("m1", (10, 100)),
        "n5": info(None, (10, 100)),  # unknown: pairs with none
        "n6": info("m1", None),
    }
    assert same_workdirs(infos) == [("n0", "n3"), ("n0", "n4"), ("n3", "n4")]
    assert same_workdirs({}) == []


def test_node_info_without_identity_still_serialises() -> None:
    old = NodeInfo("h", "Linux", "3.9.2", 0.0, 0.0, 0, False)
    assert old.to_dict()["machine"] is None and old.to_dict()["workdir_id"] is None
    assert same_workdirs({"n0": old, "n1": old}) == []
