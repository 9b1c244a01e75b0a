"""parbench as a user installs it: the wheel built from the checkout, installed with its
pinned dependencies (from PyPI, through pip's cache) into a fresh venv outside the
checkout, and its ``parbench`` command run from another directory against the testbed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .fabrun import write_inventory

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _pins() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(out)],
        cwd=out,
        check=True,
        timeout=600,
    )
    [built] = out.glob("parbench-*.whl")
    return built


@pytest.fixture(scope="module")
def parbench(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``parbench`` command of a fresh venv outside the checkout."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    assert not venv.is_relative_to(REPO)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=900,
    )
    return venv / "bin" / "parbench"


def test_the_wheel_is_one_package_with_the_pins_and_the_package_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = whl.read(metadata).decode()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = whl.read(entry_points).decode()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"parbench"}
    assert {"parbench/worker-runtime.lock", "parbench/worker/__main__.py",
            "parbench/worker/probe.py", "parbench/worker/protocol/__init__.py",
            "parbench/tasks.py", "parbench/cli.py"} <= set(names)  # fmt: skip
    required = sorted(
        line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Requires-Dist:")
    )
    assert required == _pins()
    assert "parbench = parbench.cli:main" in scripts


def test_the_installed_command_runs_a_benchmark_from_any_directory(
    testbed, parbench: Path, tmp_path: Path
) -> None:
    inventory = write_inventory(testbed, tmp_path / "prod.yaml", nodes=2, dst="/it/install")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_BENCH_")}
    env.pop("PYTHONPATH", None)
    version = subprocess.run(
        [str(parbench), "--version"], cwd=work, env=env, capture_output=True, text=True
    )
    assert version.stdout.splitlines()[0] == "parbench 0.1.0", version.stdout + version.stderr
    done = subprocess.run(
        [str(parbench), "-i", str(inventory), "push", "write", "read", "verify"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: all 8 files match the reference" in done.stdout
    assert (work / "results" / "latest" / "run.json").is_file()  # the working directory's
