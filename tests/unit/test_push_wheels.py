"""ensure_wheels: the controller's wheel cache holds exactly the lock's wheels, by sha256."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from parbench.controller.nodes import push

from .fakewheels import ALLUXIO, ALLUXIO_OLD, REQUESTS, make_wheel

SIX = "six-1.0-py3-none-any.whl"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_lock(lock: Path, wheels: list[Path]) -> Path:
    lock.write_text("# a comment\n\n" + "".join(f"{sha256(w)}  {w.name}\n" for w in wheels))
    return lock


class FakePip:
    """Stands in for ``pip download``: serves the wheels in ``index`` (all of them for a
    plain requirement, as if they were its dependencies) and records what it was asked."""

    def __init__(self, index: Path) -> None:
        self.index = index
        self.calls: list[list[str]] = []
        self.requirements: list[list[str]] = []

    def __call__(self, cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        self.calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        dest.mkdir(parents=True, exist_ok=True)
        if "-r" in cmd:
            lines = Path(cmd[cmd.index("-r") + 1]).read_text().splitlines()
            self.requirements.append(lines)
            pins = [line.split()[0].replace("==", "-") + "-" for line in lines]
            served = [w for w in self.index.iterdir() if w.name.startswith(tuple(pins))]
        else:
            served = list(self.index.iterdir())
        for wheel in served:
            (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """What the package index serves: stand-in wheels of alluxio and a dependency."""
    for name in (ALLUXIO, REQUESTS):
        make_wheel(tmp_path / "index", name)
    return tmp_path / "index"


@pytest.fixture
def lock(tmp_path: Path, index: Path) -> Path:
    return write_lock(tmp_path / "runtime.lock", sorted(index.iterdir()))


@pytest.fixture
def pip(index: Path, monkeypatch: pytest.MonkeyPatch) -> FakePip:
    fake = FakePip(index)
    monkeypatch.setattr(push.subprocess, "run", fake)
    return fake


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_fresh_download_is_exactly_the_locked_set(
    cache: Path, lock: Path, index: Path, pip: FakePip
) -> None:
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO, cache / REQUESTS]
    (cmd,) = pip.calls
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:"} <= set(cmd)
    assert pip.requirements == [
        [
            f"alluxio==0.1.4 --hash=sha256:{sha256(index / ALLUXIO)}",
            f"requests==2.0 --hash=sha256:{sha256(index / REQUESTS)}",
        ]
    ]
    assert listing(cache) == [".complete", ALLUXIO, REQUESTS]


def test_a_complete_cache_is_kept_and_checked(cache: Path, lock: Path, pip: FakePip) -> None:
    wheels = push.ensure_wheels(cache, lock)
    assert push.ensure_wheels(cache, lock) == wheels
    assert len(pip.calls) == 1


def test_a_cache_for_another_requirement_is_replaced(cache: Path, lock: Path, pip: FakePip) -> None:
    make_wheel(cache, ALLUXIO_OLD)
    make_wheel(cache, SIX)  # a dependency no longer needed
    (cache / ".complete").write_text("alluxio==0.1.3")  # as versions before the lock wrote it
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO, cache / REQUESTS]
    assert len(pip.calls) == 1
    assert listing(cache) == [".complete", ALLUXIO, REQUESTS]


def test_a_changed_lock_downloads_again(cache: Path, lock: Path, index: Path, pip: FakePip) -> None:
    push.ensure_wheels(cache, lock)
    write_lock(lock, [index / ALLUXIO])
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO]
    assert len(pip.calls) == 2
    assert listing(cache) == [".complete", ALLUXIO]


def test_comments_in_the_lock_do_not_download_again(cache: Path, lock: Path, pip: FakePip) -> None:
    push.ensure_wheels(cache, lock)
    lock.write_text("# reviewed\n" + lock.read_text())
    push.ensure_wheels(cache, lock)
    assert len(pip.calls) == 1


def test_an_unfinished_download_is_started_over(cache: Path, lock: Path, pip: FakePip) -> None:
    make_wheel(cache, ALLUXIO_OLD)  # no marker: the last download did not finish
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO, cache / REQUESTS]
    assert len(pip.calls) == 1
    assert listing(cache) == [".complete", ALLUXIO, REQUESTS]


def test_a_changed_cached_wheel_is_refused_then_fetched_again(
    cache: Path, lock: Path, index: Path, pip: FakePip
) -> None:
    push.ensure_wheels(cache, lock)
    (cache / REQUESTS).write_bytes(b"tampered")
    with pytest.raises(push.RuntimeUnavailable) as info:
        push.ensure_wheels(cache, lock)
    assert str(info.value) == (
        f"worker runtime in {cache}: {REQUESTS} has sha256 {sha256(cache / REQUESTS)},"
        f" runtime.lock says {sha256(index / REQUESTS)} (the next run downloads it again)"
    )
    assert not (cache / ".complete").exists()
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO, cache / REQUESTS]
    assert len(pip.calls) == 2


def test_an_extra_or_missing_cached_wheel_is_refused(
    cache: Path, lock: Path, index: Path, pip: FakePip
) -> None:
    push.ensure_wheels(cache, lock)
    six = make_wheel(cache, SIX)
    (cache / REQUESTS).unlink()
    with pytest.raises(push.RuntimeUnavailable) as info:
        push.ensure_wheels(cache, lock)
    assert str(info.value) == (
        f"worker runtime in {cache}: {SIX} (sha256 {sha256(six)}) is not in runtime.lock;"
        f" {REQUESTS} (sha256 {sha256(index / REQUESTS)} in runtime.lock) is missing"
        " (the next run downloads it again)"
    )
    assert not (cache / ".complete").exists()


def test_a_download_that_differs_from_the_lock_is_refused(
    cache: Path, lock: Path, index: Path, pip: FakePip
) -> None:
    """Checked here too, should pip (or a mirror) not have checked the hashes."""
    locked = sha256(index / REQUESTS)
    (index / REQUESTS).write_bytes(b"another build")
    with pytest.raises(push.RuntimeUnavailable) as info:
        push.ensure_wheels(cache, lock)
    served = sha256(index / REQUESTS)
    assert f"{REQUESTS} has sha256 {served}, runtime.lock says {locked}" in str(info.value)
    assert not (cache / ".complete").exists()


def test_a_failed_download_leaves_no_marker(
    cache: Path, lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: no network\n  (try later)\n")
    monkeypatch.setattr(push.subprocess, "run", lambda cmd, **kwargs: failed)
    make_wheel(cache, ALLUXIO_OLD)
    (cache / ".complete").write_text("alluxio==0.1.3")
    with pytest.raises(push.RuntimeUnavailable) as info:
        push.ensure_wheels(cache, lock)
    assert str(info.value) == (
        f"could not download the worker runtime into {cache}: ERROR: no network (try later)"
    )
    assert not (cache / ".complete").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{'0' * 64} {ALLUXIO}\n", "line 1: expected '<sha256>  <wheel file name>'"),
        (f"{'0' * 63}  {ALLUXIO}\n", "line 1: expected "),
        (f"{'0' * 64}  alluxio.tar.gz\n", "line 1: expected "),
        (f"{'0' * 64}  ../{ALLUXIO}\n", "line 1: expected "),
        (f"# x\n{'0' * 64}  {ALLUXIO}\n{'1' * 64}  {ALLUXIO}\n", "line 3: expected "),
        ("# only a comment\n", "lists no wheels"),
    ],
)
def test_a_malformed_lock_is_refused(
    tmp_path: Path, cache: Path, pip: FakePip, text: str, problem: str
) -> None:
    lock = tmp_path / "runtime.lock"
    lock.write_text(text)
    with pytest.raises(push.RuntimeUnavailable, match=f"^{lock}: {problem}"):
        push.ensure_wheels(cache, lock)
    assert pip.calls == []


def test_a_missing_lock_is_refused(tmp_path: Path, cache: Path, pip: FakePip) -> None:
    with pytest.raises(push.RuntimeUnavailable, match="cannot read the runtime's lock file"):
        push.ensure_wheels(cache, tmp_path / "nope.lock")


def test_relock_writes_what_pip_downloads(
    tmp_path: Path, cache: Path, index: Path, pip: FakePip
) -> None:
    lock = tmp_path / "new.lock"
    push.relock(("alluxio==0.1.4",), lock)
    assert pip.calls[0][-1] == "alluxio==0.1.4"
    assert "alluxio==0.1.4" in lock.read_text().splitlines()[0]
    assert push.read_lock(lock) == {w.name: sha256(w) for w in index.iterdir()}
    assert push.ensure_wheels(cache, lock) == [cache / ALLUXIO, cache / REQUESTS]


def test_the_committed_lock_pins_the_runtime() -> None:
    locked = push.read_lock()
    for requirement in push.RUNTIME_REQUIREMENTS:
        name, version = requirement.split("==")
        assert [f for f in locked if f.startswith(f"{name}-{version}-")], locked
    assert all(f.endswith("-none-any.whl") for f in locked)


def test_the_lock_says_how_to_regenerate_it_with_a_command_that_imports() -> None:
    """The lock's header (written by relock) names the command that regenerates it: the
    committed lock carries the header relock writes today, and its command's imports
    resolve (relock itself needs the network: not run)."""
    import ast
    import importlib
    import re

    header = push._LOCK_HEADER.format(requirements=" ".join(push.RUNTIME_REQUIREMENTS))
    assert push.RUNTIME_LOCK.read_text().startswith(header)
    [code] = re.findall(r"^#\s+\.venv/bin/python -c '(.+)'$", header, re.MULTILINE)
    tree = ast.parse(code)
    found = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert found, code
    for node in found:
        module = importlib.import_module(node.module or "")
        assert all(callable(getattr(module, a.name, None)) for a in node.names), code
