"""``--pushgateway URL``: the run's figures pushed with prometheus_client to a real
Prometheus Pushgateway (Debian's prometheus-pushgateway, which .ci/setup installs),
started here on a free loopback port without persistence, then read back from its
/metrics page with prometheus_client's parser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from parbench import tasks as fabfile
from parbench.controller.output import exports

from .fabtasks import context, exit_of
from .test_history import make_run

BINARY = "/usr/bin/prometheus-pushgateway"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A Pushgateway of its own on 127.0.0.1 (its URL); stopped after the test."""
    binary = BINARY if os.path.exists(BINARY) else shutil.which("prometheus-pushgateway")
    if binary is None:
        message = f"{BINARY} missing: install prometheus-pushgateway (.ci/setup does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "pushgateway.log", "wb") as log:
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (tmp_path / "pushgateway.log").read_text(errors="replace")
                pytest.fail(f"the Pushgateway did not start on {url}: {log_text[-500:]}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pushed(url: str) -> dict[str, list]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_report_pushes_the_runs_figures(tmp_path: Path, gateway: str, capsys) -> None:  # type: ignore[no-untyped-def]
    first = make_run(tmp_path, 100.0, {"build": "42"})
    exports.write(first.dir)
    fabfile.report(context(tmp_path), run=first.run_id, pushgateway=gateway)
    assert f"pushed: the figures of {first.run_id} to {gateway}" in capsys.readouterr().out
    (sample,) = _pushed(gateway)["parbench_throughput_bytes_per_second"]
    assert sample.value == 100.0
    assert sample.labels == {
        "job": "parbench", "instance": "", "phase": "write", "config_hash": "c0ffee",
        "build": "42", "cluster": "lab",
    }  # fmt: skip
    (begun,) = _pushed(gateway)["parbench_run_timestamp_seconds"]
    assert begun.value > 1.7e9

    # the next night, same labels: its figures replace the night before's in the group
    second = make_run(tmp_path, 250.0, {"build": "42"})
    fabfile.report(context(tmp_path), run=second.run_id, pushgateway=gateway)
    samples = _pushed(gateway)["parbench_throughput_bytes_per_second"]
    assert [s.value for s in samples] == [250.0]
    assert not [s for family in _pushed(gateway).values() for s in family
                if "run_id" in s.labels]  # fmt: skip


def test_a_gateway_that_is_not_there_is_one_line_and_exit_1(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    url = f"http://127.0.0.1:{_free_port()}"
    stop = exit_of("report", tmp_path, run=run.run_id, pushgateway=url)
    assert stop.code == 1
    assert stop.message.startswith(f"failed: pushgateway {url}: cannot push the figures of ")
    assert "\n" not in stop.message


@pytest.mark.parametrize("url", ["pushgateway:9091", "ftp://h:9091", "http://", "http://h:x"])
def test_a_bad_gateway_url_is_bad_input(tmp_path: Path, url: str) -> None:
    stop = exit_of("report", tmp_path, pushgateway=url)
    assert stop.code == 2
    assert stop.message.startswith(f"error: --pushgateway {url}: ")
    assert "\n" not in stop.message
