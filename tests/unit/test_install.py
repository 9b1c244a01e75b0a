"""parbench as an installed tool (README, "Install"): one top-level package, its
dependencies the pins of requirements.txt, the worker and the runtime's lock as package
data, results and the default inventory in the working directory; ``fab`` in the checkout
keeps the checkout's. The wheel built and installed in a fresh venv:
tests/integration/test_install.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomllib
from invoke import Config, Context

from parbench import tasks
from parbench.controller.nodes import push
from parbench.controller.run import reference

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "parbench"


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_distribution_is_one_package_with_the_requirements_and_a_command() -> None:
    project = _project()
    setuptools = project["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["parbench*"]
    assert "dependencies" in project["project"]["dynamic"]
    assert setuptools["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert project["project"]["scripts"] == {"parbench": "parbench.cli:main"}
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"


def test_what_push_reads_is_package_data_and_its_caches_are_outside_the_package() -> None:
    data = _project()["tool"]["setuptools"]["package-data"]["parbench"]
    assert push.RUNTIME_LOCK.is_file() and push.RUNTIME_LOCK.parent == PACKAGE
    assert push.RUNTIME_LOCK.name in data
    assert push.WORKER == PACKAGE / "worker" and (push.WORKER / "__main__.py").is_file()
    for cache in (push.WHEEL_CACHE, reference.GENERATED_CACHE):
        assert not cache.is_relative_to(PACKAGE), cache


def test_the_cache_is_the_users_or_the_one_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARBENCH_CACHE", "/somewhere/cache")
    assert reference._cache() == Path("/somewhere/cache")
    monkeypatch.delenv("PARBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert reference._cache() == Path("/xdg/parbench")


def _context(collection_config: dict) -> Context:
    config = Config()
    config.load_collection(collection_config)
    return Context(config)


def test_the_installed_tasks_use_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    c = _context(tasks.ns.configuration())
    assert tasks._results(c) == tmp_path / "results"
    assert c.config.bench.inventory == "inventory.yaml"  # opened relative to the cwd


def test_fab_in_the_checkout_keeps_the_checkouts_inventory_and_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fabfile

    monkeypatch.chdir(tmp_path)
    c = _context(fabfile.ns.configuration())
    assert tasks._results(c) == REPO / "results"
    assert c.config.bench.inventory == str(REPO / "inventory.yaml")
    assert set(fabfile.ns.task_names) == set(tasks.ns.task_names)
    assert "history" in fabfile.ns.task_names and "clean" in fabfile.ns.task_names


def test_results_given_as_an_absolute_path_stay_there(tmp_path: Path) -> None:
    config = dict(tasks.ns.configuration())
    config["bench"] = {**config["bench"], "results": str(tmp_path / "elsewhere")}
    assert tasks._results(_context(config)) == tmp_path / "elsewhere"
    assert os.path.isabs(tasks._results(_context(config)))


def test_the_users_cache_is_filled_by_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nodes' pushes run in threads: each computes the generated data's sha256 into the
    (now shared, per user) cache under a temporary name of its own."""
    import threading

    both = threading.Barrier(2, timeout=10)

    def digest(size: int) -> str:
        both.wait()  # both threads past the cache miss
        return "d" * 64

    written: list[str] = []
    write_text = Path.write_text

    def recorded(self: Path, text: str, *args: object, **kwargs: object) -> int:
        written.append(self.name)
        both.wait()  # both written before either is renamed
        return write_text(self, text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reference, "generated_digest", digest)
    monkeypatch.setattr(Path, "write_text", recorded)
    found: list[object] = []

    def one() -> None:
        try:
            found.append(reference.generated_sha256(4096, tmp_path / "cache"))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            found.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == ["d" * 64, "d" * 64] and len(set(written)) == 2
