"""ensure_wheels: the controller's wheel cache holds exactly RUNTIME_REQUIREMENT's wheels."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller import push

OLD = "alluxio-0.1.3-py3-none-any.whl"


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stands in for ``pip download``: one wheel named after the requirement."""
    asked: list[str] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        requirement, dest = cmd[-1], Path(cmd[cmd.index("-d") + 1])
        asked.append(requirement)
        name, version = requirement.split("==")
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"{name}-{version}-py3-none-any.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(push.subprocess, "run", fake_run)
    return asked


def current() -> str:
    name, version = push.RUNTIME_REQUIREMENT.split("==")
    return f"{name}-{version}-py3-none-any.whl"


def test_a_cache_for_another_requirement_is_replaced(tmp_path: Path, downloads: list) -> None:
    (tmp_path / OLD).write_bytes(b"old")
    (tmp_path / "six-1.0-py3-none-any.whl").write_bytes(b"a dependency no longer needed")
    (tmp_path / ".complete").write_text("alluxio==0.1.3")
    wheels = push.ensure_wheels(tmp_path)
    assert downloads == [push.RUNTIME_REQUIREMENT]
    assert [w.name for w in wheels] == [current()]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".complete", current()]
    assert (tmp_path / ".complete").read_text().strip() == push.RUNTIME_REQUIREMENT


def test_a_complete_cache_for_this_requirement_is_kept(tmp_path: Path, downloads: list) -> None:
    (tmp_path / current()).write_bytes(b"cached")
    (tmp_path / ".complete").write_text(push.RUNTIME_REQUIREMENT)  # as older versions wrote it
    assert push.ensure_wheels(tmp_path) == [tmp_path / current()]
    assert downloads == []


def test_an_unfinished_download_is_started_over(tmp_path: Path, downloads: list) -> None:
    (tmp_path / OLD).write_bytes(b"partial")  # no marker: the last download did not finish
    assert push.ensure_wheels(tmp_path) == [tmp_path / current()]
    assert downloads == [push.RUNTIME_REQUIREMENT]


def test_a_failed_download_leaves_no_marker(tmp_path: Path, monkeypatch) -> None:
    failed = subprocess.CompletedProcess([], 1, "", "no network")
    monkeypatch.setattr(push.subprocess, "run", lambda cmd, **kwargs: failed)
    (tmp_path / ".complete").write_text("alluxio==0.1.3")
    with pytest.raises(push.RuntimeUnavailable, match="no network"):
        push.ensure_wheels(tmp_path)
    assert not (tmp_path / ".complete").exists()
