"""metrics.prom read back by prometheus_client's own parser; junit.xml's suites, cases
and failures, valid against the JUnit schema (junit-10.xsd); bmf.json against the
Bencher Metric Format's JSON Schema."""

from __future__ import annotations

import calendar
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from parbench.controller.output import exports
from parbench.controller.run.labels import LabelError, parse_labels
from tests.schemas import BMF_SCHEMA, junit_schema, schema_errors

from .fabtasks import exit_of
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
        "phase": "write", "config_hash": "c0ffee", "build": "42", "cluster": "lab",
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


#: what a node's error may carry: colour codes, a NUL, a lone surrogate (from JSON's
#: "\ud800"), C1 controls, XML's non-characters
NASTY = "\x1b[31mboom\x1b[0m\x00 \ud800 \x85\x9b\x7f \ufffe\uffff\x1b]0;title\x07end \x0b\x0c"


def test_xml_invalid_characters_and_escapes_are_not_exported(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0, {"build": "4\x1b[1m2\x9b\ufffe\ud800"})
    summary = run.dir.read_doc("summary.json")
    summary["write"]["per_node"] = [{"node": "n0"}]
    summary["write"]["config_hash"] = "c0\x00ffee"
    summary["write"]["errors"] = [
        {"node": "n0", "client": 1, "path": "/p/\x00", "status": "error", "error": NASTY}
    ]
    run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
    run.dir.write_doc(
        "failures.json",
        {"write": [{"node": "n1", "host": "h", "step": "write", "cause": NASTY}]},
    )
    run.dir.write_doc(
        "check.json",
        {"regressions": [{"phase": "write", "metric": "aggregate", "line": "REGRESSION " + NASTY}]},
    )
    exports.write(run.dir)

    junit_schema().validate(str(run.path / "junit.xml"))  # parses it: well-formed XML first
    suites = ET.parse(run.path / "junit.xml").getroot()
    texts = [e.text or "" for e in suites.iter()] + [
        v for e in suites.iter() for v in e.attrib.values()
    ]
    assert "n0/1 /p/: error: boom   end " in "\n".join(texts)
    assert not [t for t in texts if any(c in t for c in "\x1b\x00\x85\x9b\x7f\ufffe\uffff\x0b\x0c")]
    lost = suites.find("testsuite[@name='parbench.write']/testcase[@name='n1']/failure")
    assert lost is not None and lost.get("message") == "n1: write: boom   end "

    families = list(text_string_to_metric_families((run.path / "metrics.prom").read_text()))
    (sample,) = [f for f in families if f.name == "parbench_valid"][0].samples
    assert sample.labels["build"] == "42" and sample.labels["config_hash"] == "c0ffee"


def test_an_older_runs_reserved_label_does_not_replace_parbenchs_own(tmp_path: Path) -> None:
    """A run sealed before such labels were refused: its label is left out of the export."""
    run = make_run(tmp_path, 100.0, {"phase": "mine", "__name__": "x", "build": "7"})
    exports.write(run.dir)
    text = (run.path / "metrics.prom").read_text()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "parbench_valid"]
    (sample,) = family.samples
    assert sample.name == "parbench_valid"
    assert sample.labels == {
        "phase": "write", "config_hash": "c0ffee", "build": "7", "cluster": "lab",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["phase", "run_id", "config_hash", "__name__", "__x"])
def test_a_reserved_label_is_refused_on_the_command_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(LabelError, match=f"--label {name}: expected a label name other than"):
        parse_labels([f"{name}=x"])
    stop = exit_of("history_", tmp_path, label=[f"{name}=x"])
    assert stop.code == 2 and stop.message.startswith(f"error: --label {name}: ")
    assert "\n" not in stop.message


def _series(run_dir_path: Path) -> dict[str, list]:
    text = (run_dir_path / "metrics.prom").read_text()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_two_nights_of_one_benchmark_are_one_series(tmp_path: Path) -> None:
    """The run id is no label (it would start a new series every night): the same
    benchmark's runs have the same labels; when each began is a gauge."""
    first, second = make_run(tmp_path, 100.0), make_run(tmp_path, 200.0)
    for run in (first, second):
        exports.write(run.dir)
    a, b = _series(first.path), _series(second.path)
    for name in ("parbench_throughput_bytes_per_second", "parbench_valid"):
        assert [s.labels for s in a[name]] == [s.labels for s in b[name]]
        assert "run_id" not in a[name][0].labels
    (begun,) = b["parbench_run_timestamp_seconds"]
    created = second.dir.read_doc("run.json")["created"]
    assert begun.value == calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    assert begun.labels == {"phase": "write", "config_hash": "c0ffee", "cluster": "lab"}
    assert "run_id" not in (second.path / "metrics.prom").read_text()


def _repeated(run, files: int = 20) -> None:  # type: ignore[no-untyped-def]
    summary = run.dir.read_doc("summary.json")
    write = summary["write"]
    write["files"] = files
    write["wall_seconds"] = 4.0
    write["latency"]["file"].update(count=20, p50=800.0)
    write["iterations"]["throughput"] = {"n": 2, "mean": 100.0, "ci_low": 87.3, "ci_high": 112.7}
    run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})


def test_bmf_json_per_run(tmp_path: Path) -> None:
    """bmf.json holds the Bencher Metric Format: valid against its schema, a benchmark
    name that does not change from night to night, the throughput's bounds the
    iterations' confidence interval."""
    first, second = make_run(tmp_path, 100.0), make_run(tmp_path, 150.0)
    _repeated(first)
    for run in (first, second):
        exports.write(run.dir)
    document = json.loads((first.path / "bmf.json").read_text())
    assert schema_errors(document, BMF_SCHEMA) == []
    assert list(document) == ["parbench/write/c0ffee"]
    measures = document["parbench/write/c0ffee"]
    assert measures["throughput-bytes-per-s"] == {
        "value": 100.0, "lower_value": 87.3, "upper_value": 112.7
    }  # fmt: skip
    assert measures["first-done-bytes-per-s"] == {"value": 90.0}
    assert measures["files-per-s"] == {"value": 5.0}
    assert measures["latency-p50-ns"] == {"value": 800_000.0}
    assert measures["latency-p99-ns"] == {"value": 1_500_000.0}
    again = json.loads((second.path / "bmf.json").read_text())
    assert list(again) == list(document)  # the same benchmark, another night
    assert again["parbench/write/c0ffee"]["throughput-bytes-per-s"] == {"value": 150.0}
    assert not schema_errors(again, BMF_SCHEMA)


def test_the_bmf_schema_check_is_real() -> None:
    assert schema_errors({"b": {"m": {"lower_value": 1}}}, BMF_SCHEMA)
    assert schema_errors({"b": {"m": {"value": "1"}}}, BMF_SCHEMA)
    assert schema_errors({"b": {"m": {"value": float("nan")}}}, BMF_SCHEMA)
    assert schema_errors({"b": [1]}, BMF_SCHEMA)


def test_junit_has_times_and_the_headline_as_properties(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    _repeated(run)
    summary = run.dir.read_doc("summary.json")
    summary["write"]["per_node"] = [{"node": "n0", "wall_seconds": 3.5}, {"node": "n1"}]
    run.dir.write_doc("summary.json", {k: v for k, v in summary.items() if k != "schema"})
    exports.write(run.dir)
    junit_schema().validate(str(run.path / "junit.xml"))
    suites = ET.parse(run.path / "junit.xml").getroot()
    write = suites.find("testsuite[@name='parbench.write']")
    assert write is not None and write.get("time") == "4.000"
    cases = {c.get("name"): c.get("time") for c in write.iter("testcase")}
    assert cases == {"n0": "3.500", "n1": "4.000"}  # a node's own time, else the phase's
    found = {p.get("name"): p.get("value") for p in write.iter("property")}
    assert found["throughput_bytes_per_s"] == "100"
    assert found["latency_p99_ns"] == "1.5e+06" and found["files_per_s"] == "5"
    assert found["config_hash"] == "c0ffee" and found["valid"] == "true"
    assert found["wall_seconds"] == "4"
