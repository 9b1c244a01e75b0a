"""metrics.prom read back by prometheus_client's own parser; junit.xml's suites, cases
and failures, valid against the JUnit schema (junit-10.xsd)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from controller import exports
from tests.schemas import junit_schema

from .test_history import make_run


def test_openmetrics_and_junit_from_a_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0, {"build": "42"})
    summary = run.dir.read_doc("summary.json")
    summary["write"]["per_node"] = [{"node": "n0"}, {"node": "n1"}]
    summary["write"]["latency"]["file"]["count"] = 5
    summary["write"]["errors"] = [
        {"node": "n1", "client": 1, "path": "/p/n1/1", "status": "error", "error": "boom"}
    ]
    run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
    run.dir.write_doc("failures.json", {"write": []})
    exports.write(run.dir)

    families = {
        f.name: f for f in text_string_to_metric_families((run.path / "metrics.prom").read_text())
    }
    (sample,) = families["parbench_throughput_bytes_per_second"].samples
    assert sample.value == 100.0
    assert sample.labels == {
        "run_id": run.run_id, "phase": "write", "config_hash": "c0ffee",
        "build": "42", "cluster": "lab",
    }  # fmt: skip
    assert families["parbench_errors"].samples[0].value == 1
    assert families["parbench_file_latency_p99_seconds"].samples[0].value == 0.0015

    junit_schema().validate(str(run.path / "junit.xml"))
    suites = ET.fromstring((run.path / "junit.xml").read_text())
    assert (suites.get("tests"), suites.get("failures")) == ("2", "1")  # write: n0, n1
    write = suites.find("testsuite[@name='parbench.write']")
    cases = {c.get("name"): c for c in write.iter("testcase")}
    assert cases["n0"].find("failure") is None
    assert "n1/1 /p/n1/1: error: boom" in cases["n1"].find("failure").text


def test_a_lost_node_and_a_regression_are_failures(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    run.dir.write_doc(
        "failures.json",
        {"write": [{"node": "n0", "host": "u@h:22", "step": "write", "cause": "lost"}]},
    )
    run.dir.write_doc(
        "check.json",
        {"regressions": [{"phase": "write", "metric": "aggregate", "line": "REGRESSION x"}]},
    )
    exports.write(run.dir)
    junit_schema().validate(str(run.path / "junit.xml"))
    suites = ET.fromstring((run.path / "junit.xml").read_text())
    lost = suites.find("testsuite[@name='parbench.write']/testcase[@name='n0']/failure")
    assert lost is not None and lost.get("message") == "n0: write: lost"
    regression = suites.find("testsuite[@name='parbench.check']/testcase/failure")
    assert regression is not None and regression.text == "REGRESSION x"


def test_the_schema_refuses_what_a_dashboard_could_not_read() -> None:
    """The validation above is real: a suite without its counts is refused."""
    schema = junit_schema()
    assert schema.is_valid("<testsuites><testsuite name='s' tests='1' failures='0' errors='0'>"
                           "<testcase name='c'/></testsuite></testsuites>")  # fmt: skip
    assert not schema.is_valid("<testsuites><testsuite name='s'><testcase name='c'/>"
                               "</testsuite></testsuites>")  # fmt: skip
