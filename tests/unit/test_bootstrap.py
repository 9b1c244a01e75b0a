"""worker/bootstrap.py: replaces only a venv parbench made, installs exactly the wheels named."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from parbench.worker import bootstrap

from .fakewheels import ALLUXIO, ALLUXIO_OLD, REQUESTS, make_wheel, tree


def installed_version(venv: Path, package: str) -> str:
    code = f"import {package}; print({package}.VERSION)"
    python = venv / "bin" / "python"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    for name in (ALLUXIO_OLD, ALLUXIO, REQUESTS):
        make_wheel(tmp_path / "wheels", name)
    (tmp_path / "wheels" / "notes.txt").write_text("not a wheel\n")
    (tmp_path / "wheels" / "folder.whl").mkdir()
    return tmp_path / "wheels"


def test_refuses_a_venv_parbench_did_not_make(tmp_path: Path, wheels: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "mine").write_text("the user's own\n")
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as info:
        bootstrap.install(str(wheels), str(venv), "s1", [ALLUXIO, REQUESTS])
    assert str(info.value) == (
        f"bootstrap: {venv} exists and was not made by parbench (no .parbench-runtime); "
        "move it away"
    )
    assert tree(tmp_path) == before  # neither the venv nor the stale wheel was touched


def test_refuses_a_file_in_the_venv_place(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "venv").write_text("a file\n")
    with pytest.raises(SystemExit, match="was not made by parbench"):
        bootstrap.install(str(wheels), str(tmp_path / "venv"), "s1", [ALLUXIO, REQUESTS])
    assert (tmp_path / "venv").read_text() == "a file\n"


def test_installs_exactly_the_named_wheels_into_a_fresh_venv(tmp_path: Path, wheels: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".parbench-runtime").write_text("old\n")
    (venv / "junk").write_text("from the last runtime\n")
    bootstrap.install(str(wheels), str(venv), "s1", [ALLUXIO, REQUESTS])
    assert sorted(os.listdir(wheels)) == sorted([ALLUXIO, REQUESTS, "folder.whl", "notes.txt"])
    assert not (venv / "junk").exists()
    assert (venv / ".parbench-runtime").read_text() == "s1\n"
    assert installed_version(venv, "alluxio") == "0.1.4\n"


def test_a_failed_install_leaves_a_venv_the_next_one_replaces(tmp_path: Path, wheels: Path) -> None:
    venv = tmp_path / "venv"
    with pytest.raises(subprocess.CalledProcessError):  # requests missing: the check fails
        bootstrap.install(str(wheels), str(venv), "s1", [ALLUXIO])
    assert (venv / ".parbench-runtime").read_text() == bootstrap.UNFINISHED + "\n"
    make_wheel(wheels, REQUESTS)  # pruned by the failed run
    bootstrap.install(str(wheels), str(venv), "s2", [ALLUXIO, REQUESTS])
    assert (venv / ".parbench-runtime").read_text() == "s2\n"


@pytest.mark.parametrize(
    "name", ["../alluxio-0.1.4-py3-none-any.whl", "cffi-1.0-cp39-cp39-linux_x86_64.whl"]
)
def test_names_must_be_pure_wheels_in_the_folder(tmp_path: Path, wheels: Path, name: str) -> None:
    before = tree(tmp_path)
    with pytest.raises(SystemExit, match="expected bare file names of pure-Python wheels"):
        bootstrap.install(str(wheels), str(tmp_path / "venv"), "s1", [ALLUXIO, name])
    assert tree(tmp_path) == before


def test_named_wheels_must_exist(tmp_path: Path, wheels: Path) -> None:
    with pytest.raises(SystemExit, match="not in .*: nope-1-py3-none-any.whl"):
        bootstrap.install(str(wheels), str(tmp_path / "venv"), "s1", ["nope-1-py3-none-any.whl"])
