"""What schedulers and dashboards read, written into each run folder from its own files:

- ``metrics.prom``: OpenMetrics text (prometheus_client's writer) with the headline
  figures of each measured phase, labelled with the run, phase, config hash and the run's
  labels: for node_exporter's textfile collector or a Pushgateway.
- ``junit.xml``: a test suite per phase and a test case per node (its failed clients, or
  the node's own failure, as the failure), and a test case per regression found by
  ``fab check``: for CI dashboards.

Both are rewritten whenever the run's summary changes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, Optional

from worker.protocol import TIMED_PHASES, VERIFY_PHASES

from ..run.inventory import reserved_label
from ..run.rundir import RunDir, write_atomically

PREFIX = "parbench_"

#: terminal escape sequences (colours, titles) in what nodes and storage said: CSI (7- and
#: 8-bit), OSC (ended by BEL or ST), and the other two-character ones (or a lone ESC)
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]?"
)
#: what XML 1.0 does not allow (C0 controls but tab and newlines, lone surrogates,
#: U+FFFE, U+FFFF), and DEL and the C1 controls, which it only discourages
_NOT_TEXT = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    """``text`` without terminal escape sequences and without characters an XML or
    OpenMetrics reader would choke on: what goes into junit.xml and metrics.prom."""
    return _NOT_TEXT.sub("", _ESCAPES.sub("", text))


def _gauges(run: RunDir, summary: dict, labels: dict[str, str]) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    # a run sealed before reserved names were refused: its label would replace ours
    labels = {k: v for k, v in labels.items() if not reserved_label(k)}
    names = ["run_id", "phase", "config_hash", *sorted(labels)]

    def family(name: str, text: str, unit: str = "") -> Any:
        return GaugeMetricFamily(PREFIX + name, clean(text), labels=names, unit=unit)

    throughput = family("throughput_bytes_per_second", "aggregate throughput (last done)")
    first = family("first_done_bytes_per_second", "throughput until the first client was done")
    p99 = family("file_latency_p99_seconds", "p99 of a whole file's time (meta: of a create)")
    ops = family("ops_per_second", "metadata operations per second, all kinds")
    valid = family("valid", "1 when the phase's figures can be trusted")
    errors = family("errors", "client records that are not ok")
    for phase in TIMED_PHASES:  # figures become metrics (verify phases: pass/fail, JUnit)
        figures = summary.get(phase)
        if not isinstance(figures, dict):
            continue
        values = [
            clean(str(value))
            for value in (
                run.run_id,
                phase,
                figures.get("config_hash", ""),
                *(labels[k] for k in sorted(labels)),
            )
        ]
        if figures.get("aggregate_throughput") is not None:
            throughput.add_metric(values, figures["aggregate_throughput"])
        if figures.get("first_done"):
            first.add_metric(values, figures["first_done"]["throughput"])
        latency = figures.get("latency") or {}
        headline = latency.get("file") or latency.get("create")
        if headline and headline.get("p99") is not None:  # None: too few samples
            p99.add_metric(values, headline["p99"] / 1e6)
        kinds = figures.get("ops") or {}
        seconds = sum(k.get("seconds", 0.0) for k in kinds.values())
        if seconds > 0:
            ops.add_metric(values, sum(k.get("count", 0) for k in kinds.values()) / seconds)
        valid.add_metric(values, 1.0 if figures.get("valid", True) else 0.0)
        errors.add_metric(values, len(figures.get("errors", [])))
    yield from (g for g in (throughput, first, p99, ops, valid, errors) if g.samples)


def openmetrics(run: RunDir, summary: dict, labels: dict[str, str]) -> str:
    """The run's headline figures as OpenMetrics text."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.exposition import generate_latest

    class Figures:
        def collect(self) -> Iterator[Any]:
            return _gauges(run, summary, labels)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Figures())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def junit(run: RunDir, summary: dict, failures: dict, check: Optional[dict]) -> str:
    """JUnit XML: a suite per phase with a case per node, and one for the check."""
    suites = ET.Element("testsuites", name=f"parbench {run.run_id}")
    order = [p for p in (*TIMED_PHASES, *VERIFY_PHASES) if p in summary]
    for phase in order + sorted(set(summary) - set(order)):
        figures = summary[phase]
        if not isinstance(figures, dict) or "by_client" not in figures and "errors" not in figures:
            continue
        suite = ET.SubElement(suites, "testsuite", name=f"parbench.{phase}")
        nodes = _nodes(figures, failures.get(phase, []))
        for node, (lost, bad) in nodes.items():
            case = ET.SubElement(suite, "testcase", classname=f"parbench.{phase}", name=node)
            if lost:
                ET.SubElement(case, "failure", message=f"{node}: {lost}", type="node").text = lost
            elif bad:
                text = "\n".join(bad)
                ET.SubElement(
                    case, "failure", message=f"{len(bad)} client(s) not ok", type="clients"
                ).text = text
        _count(suite)
    if check is not None:
        suite = ET.SubElement(suites, "testsuite", name="parbench.check")
        for regression in check.get("regressions", []):
            case = ET.SubElement(
                suite,
                "testcase",
                classname="parbench.check",
                name=f"{regression['phase']}.{regression['metric']}",
            )
            ET.SubElement(
                case, "failure", message=regression["line"], type="regression"
            ).text = regression["line"]
        if not check.get("regressions"):
            ET.SubElement(suite, "testcase", classname="parbench.check", name="no regression")
        _count(suite)
    _count(suites)
    for element in suites.iter():  # what nodes said may hold colour codes, a NUL, ...
        element.text = None if element.text is None else clean(element.text)
        for key, value in element.attrib.items():
            element.set(key, clean(value))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _nodes(figures: dict, failed: list) -> dict[str, tuple[str, list[str]]]:
    """node -> (its own failure, its clients' failures), in the order seen."""
    per_node = figures.get("per_node") or []  # a list of nodes; meta: a mapping by node
    names = [n["node"] for n in per_node] if isinstance(per_node, list) else list(per_node)
    nodes: dict[str, tuple[str, list[str]]] = {name: ("", []) for name in names}
    for error in figures.get("errors", []):
        lost, bad = nodes.setdefault(error["node"], ("", []))
        who = f"{error['node']}/{error['client']} {error['path']}"
        bad.append(f"{who}: {error['status']}: {error.get('error') or ''}")
    for failure in failed:
        _, bad = nodes.get(failure["node"], ("", []))
        nodes[failure["node"]] = (f"{failure['step']}: {failure['cause']}", bad)
    return nodes


def _count(element: ET.Element) -> None:
    cases = element.iter("testcase")
    total = failed = 0
    for case in cases:
        total += 1
        failed += case.find("failure") is not None
    element.set("tests", str(total))
    element.set("failures", str(failed))
    element.set("errors", "0")


def write(run: RunDir) -> None:
    """(Re)write the run's metrics.prom and junit.xml from its files (with the verdict
    of ``fab check`` when check.json holds one)."""
    sealed = run.read_doc("run.json") or {}
    check = run.read_doc("check.json")
    summary = {k: v for k, v in run.read_doc("summary.json", {}).items() if k != "schema"}
    failures = {k: v for k, v in run.read_doc("failures.json", {}).items() if k != "schema"}
    labels = {str(k): str(v) for k, v in (sealed.get("labels") or {}).items()}
    write_atomically(run.path / "metrics.prom", openmetrics(run, summary, labels))
    write_atomically(run.path / "junit.xml", junit(run, summary, failures, check))


def keep_check(run: RunDir, verdict: Any, lines: list[str], labels: dict[str, str]) -> None:
    """Save ``fab check``'s verdict in the run (check.json: with the labels the history
    was filtered by, so the run's page draws the series that was judged) and its exports."""
    run.write_doc(
        "check.json",
        {
            "regressions": [
                {"phase": r.phase, "metric": r.metric, "line": line}
                for r, line in zip(verdict.regressions, lines)
            ],
            "notes": list(verdict.notes),
            "runs": verdict.runs,
            "labels": labels,
        },
    )
    write(run)
