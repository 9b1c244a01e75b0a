"""One grammar of sizes and durations everywhere (worker/protocol/units.py): every setting
declared in bytes or seconds, ``data``, the worker's command line and get_data.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from parbench.controller.run.checks import Check, InventoryError
from parbench.controller.run.inventory import load
from parbench.controller.run.iterations import seconds_of
from parbench.controller.run.settings import SETTINGS
from parbench.worker.__main__ import build_parser, request_from_args

REPO = Path(__file__).resolve().parents[2]
NODES = "nodes:\n  - {id: n0, host: h0}\n"
SECONDS = [s for s in SETTINGS if s.unit == "seconds"]
BYTES = [s for s in SETTINGS if s.unit == "bytes"]


def test_the_declarations_have_time_and_size_settings() -> None:
    names = {s.name for s in SECONDS}
    assert {"duration", "phase_timeout", "ready_timeout", "start_delay"} <= names
    assert {"chunk_size", "meta_size"} <= {s.name for s in BYTES}


@pytest.mark.parametrize("setting", SECONDS, ids=lambda s: s.name)
@pytest.mark.parametrize(("written", "seconds"), [("1m30s", 90.0), ("90s", 90.0), ("90", 90.0)])
def test_every_time_setting_reads_the_duration_grammar(setting, written: str, seconds) -> None:
    """Declared with unit seconds: its own rule or not, it reads 1m30s (from the declaration
    itself, as the inventory and any flag made from it do)."""
    check = Check("inv.yaml", Path("."))
    assert setting.check(check, f"defaults.{setting.name}", written) == seconds


@pytest.mark.parametrize("setting", SECONDS, ids=lambda s: s.name)
def test_every_time_setting_refuses_a_bad_duration_naming_the_key(setting) -> None:
    check = Check("inv.yaml", Path("."))
    with pytest.raises(InventoryError) as info:
        setting.check(check, f"defaults.{setting.name}", "30 minutes")
    assert str(info.value).startswith(f"inv.yaml: defaults.{setting.name}: expected ")


def test_phase_timeout_30m_in_an_inventory(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(
        "defaults: {phase_timeout: 30m, ready_timeout: 2m, duration: 1m30s, max_start_skew:"
        " 250ms, start_delay: 2s, request_timeout: 1h, short_phase_seconds: 1m}\n" + NODES
    )
    s = load(tmp_path / "inv.yaml").settings
    assert (s.phase_timeout, s.ready_timeout, s.duration) == (1800.0, 120.0, 90.0)
    assert (s.max_start_skew, s.start_delay, s.request_timeout) == (0.25, 2.0, 3600.0)
    assert s.short_phase_seconds == 60.0


@pytest.mark.parametrize("written", ["1m30s", "1d", "90"])
def test_the_duration_flag_reads_the_grammar(written: str) -> None:
    assert seconds_of(written) == {"1m30s": 90.0, "1d": 86400.0, "90": 90.0}[written]


@pytest.mark.parametrize("setting", BYTES, ids=lambda s: s.name)
@pytest.mark.parametrize(("written", "size"), [("4K", 4096), ("8KiB", 8192), ("5kB", 5000)])
def test_every_size_setting_reads_the_size_grammar(setting, written: str, size: int) -> None:
    check = Check("inv.yaml", Path("."))
    assert setting.check(check, f"defaults.{setting.name}", written) == size


@pytest.mark.parametrize("setting", BYTES, ids=lambda s: s.name)
def test_every_size_setting_refuses_an_ambiguous_size(setting) -> None:
    check = Check("inv.yaml", Path("."))
    with pytest.raises(InventoryError) as info:
        setting.check(check, f"defaults.{setting.name}", "8kb")
    assert f"defaults.{setting.name}: '8kb' is ambiguous" in str(info.value)


def test_chunk_size_4m(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("defaults: {chunk_size: 4M, meta_size: 1k}\n" + NODES)
    s = load(tmp_path / "inv.yaml").settings
    assert (s.chunk_size, s.meta_size) == (4 * 1024**2, 1024)


@pytest.mark.parametrize(
    ("written", "expected"),
    [("1G", 1024**3), ("64 MiB", 64 * 1024**2), ("2MB", 2_000_000), ("4k", 4096), (4096, 4096)],
)
def test_data_given_as_a_size_is_generated(tmp_path: Path, written, expected: int) -> None:
    (tmp_path / "inv.yaml").write_text(f"defaults: {{data: {written}}}\n" + NODES)
    assert load(tmp_path / "inv.yaml").settings.data == expected


@pytest.mark.parametrize(
    "written", ["data/5mb.txt", "/ref/5mb.txt", "5mb.txt", "./1G", "data/1G", "~/ref.txt"]
)
def test_data_given_as_a_path_is_a_file(tmp_path: Path, written: str) -> None:
    """A path has a '/' or is not shaped like a size (a number, then letters)."""
    (tmp_path / "inv.yaml").write_text(f"defaults: {{data: '{written}'}}\n" + NODES)
    data = load(tmp_path / "inv.yaml").settings.data
    assert isinstance(data, Path) and data.name == Path(written).name


def test_data_shaped_like_a_size_must_be_one(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("defaults: {data: 5mb}\n" + NODES)
    with pytest.raises(InventoryError) as info:
        load(tmp_path / "inv.yaml")
    assert "defaults.data: '5mb' is ambiguous" in str(info.value)


def _request(*options: str):
    args = build_parser().parse_args(
        ["write", "--node", "n0", "--clients", "1", "--src", "ref", "--dst", "/p", *options]
    )
    return request_from_args(args)


@pytest.mark.parametrize(
    ("written", "size"),
    [("4M", 4 * 1024**2), ("64KiB", 65536), ("4096", 4096), ("2MB", 2 * 10**6)],
)
def test_the_workers_chunk_size_reads_the_grammar(written: str, size: int) -> None:
    assert _request("--chunk-size", written).chunk_size == size


@pytest.mark.parametrize("written", ["4kb", "0", "-4K", "lots"])
def test_the_workers_chunk_size_refuses_a_bad_size(written: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        _request("--chunk-size", written)
    assert info.value.code == 2
    assert "--chunk-size" in capsys.readouterr().err


def test_the_workers_durations_read_the_grammar() -> None:
    request = _request("--duration", "1m30s", "--timeout", "2m")
    assert (request.duration, request.storage.timeout) == (90.0, 120.0)


@pytest.fixture
def get_data(tmp_path: Path) -> Path:
    """A copy of get_data.sh with the worker next to it, as in the checkout."""
    shutil.copy(REPO / "get_data.sh", tmp_path / "get_data.sh")
    (tmp_path / "parbench").symlink_to(REPO / "parbench")
    return tmp_path


SAME = ["4K", "4k", "1.5KiB", "2kB", "3KB", "1000", "512B", "0.5KiB", "1M"]


def test_get_data_makes_the_sizes_python_reads(get_data: Path) -> None:
    from parbench.worker.protocol import parse_size

    done = subprocess.run(
        ["bash", str(get_data / "get_data.sh"), *SAME], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for written in SAME:
        assert (get_data / "data" / f"{written}.txt").stat().st_size == parse_size(written)


@pytest.mark.parametrize("written", ["64mb", "1gb", "-1K", "lots", "1.5"])
def test_get_data_refuses_what_python_refuses(get_data: Path, written: str) -> None:
    done = subprocess.run(
        ["bash", str(get_data / "get_data.sh"), written],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert done.returncode == 2
    assert done.stderr.startswith("get_data.sh: ") and done.stderr.count("\n") == 1
    assert not (get_data / "data" / f"{written}.txt").exists()


def test_get_data_by_default_makes_5mb_txt_of_5_mib(get_data: Path) -> None:
    done = subprocess.run(["bash", str(get_data / "get_data.sh")], capture_output=True)
    assert done.returncode == 0
    assert (get_data / "data" / "5mb.txt").stat().st_size == 5 * 1024**2
