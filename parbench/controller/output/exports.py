"""What schedulers and dashboards read, written into each run folder from its own files
(docs/results.md describes each):

- ``metrics.prom``: OpenMetrics text with the headline figures of each measured phase
  (openmetrics.py): for node_exporter's textfile collector or a Pushgateway.
- ``bmf.json``: the same in the Bencher Metric Format (bmf.py), for ``bencher run``.
- ``junit.xml``: a test suite per phase (its wall time, and its headline figures as
  properties) and a test case per node (its time; its failed clients, or the node's own
  failure, as the failure), and a test case per regression found by ``fab check``: for
  CI dashboards.

All are rewritten whenever the run's summary changes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, Optional

from parbench.worker.protocol import TIMED_PHASES, VERIFY_PHASES

from ..run.rundir import RunDir, write_atomically
from .bmf import benchmark_name, bmf
from .clean import clean
from .openmetrics import openmetrics

__all__ = ["clean", "junit", "keep_check", "write"]


def junit(run: RunDir, summary: dict, failures: dict, check: Optional[dict]) -> str:
    """JUnit XML: a suite per phase with a case per node, and one for the check."""
    suites = ET.Element("testsuites", name=f"parbench {run.run_id}")
    order = [p for p in (*TIMED_PHASES, *VERIFY_PHASES) if p in summary]
    for phase in order + sorted(set(summary) - set(order)):
        figures = summary[phase]
        if not isinstance(figures, dict) or "by_client" not in figures and "errors" not in figures:
            continue
        suite = ET.SubElement(suites, "testsuite", name=f"parbench.{phase}")
        wall = figures.get("wall_seconds")
        if isinstance(wall, (int, float)) and wall >= 0:
            suite.set("time", f"{wall:.3f}")
        _properties(suite, phase, figures)
        nodes = _nodes(figures, failures.get(phase, []))
        for node, (lost, bad) in nodes.items():
            case = ET.SubElement(suite, "testcase", classname=f"parbench.{phase}", name=node)
            seconds = _node_seconds(figures, node)
            if seconds is not None:
                case.set("time", f"{seconds:.3f}")
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


def _properties(suite: ET.Element, phase: str, figures: dict) -> None:
    """The phase's headline figures as the suite's properties (units in the names)."""
    found: dict[str, Any] = {
        "config_hash": figures.get("config_hash"),
        "valid": None if "valid" not in figures else str(bool(figures["valid"])).lower(),
        "clients": figures.get("clients"),
        "ok": figures.get("ok"),
        "errors": len(figures["errors"]) if "errors" in figures else None,
        "wall_seconds": figures.get("wall_seconds"),
    }
    for name, metric in bmf({phase: figures}).get(benchmark_name(phase, figures), {}).items():
        found[name.replace("-", "_")] = metric["value"]
    found["invalid"] = "; ".join(figures.get("invalid") or []) or None
    if any(v is not None for v in found.values()):
        properties = ET.SubElement(suite, "properties")
        for name, value in found.items():
            if value is not None:
                text = f"{value:.6g}" if isinstance(value, float) else str(value)
                ET.SubElement(properties, "property", name=name, value=text)


def _node_seconds(figures: dict, node: str) -> Optional[float]:
    """The node's own wall time in the phase, else the phase's (None: not known)."""
    per_node = figures.get("per_node")
    if isinstance(per_node, list):
        for entry in per_node:
            if entry.get("node") == node and entry.get("wall_seconds"):
                return float(entry["wall_seconds"])
    wall = figures.get("wall_seconds")
    return float(wall) if isinstance(wall, (int, float)) and wall >= 0 else None


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
    """(Re)write the run's metrics.prom, bmf.json and junit.xml from its files (with the
    verdict of ``fab check`` when check.json holds one)."""
    sealed = run.read_doc("run.json") or {}
    check = run.read_doc("check.json")
    summary = {k: v for k, v in run.read_doc("summary.json", {}).items() if k != "schema"}
    failures = {k: v for k, v in run.read_doc("failures.json", {}).items() if k != "schema"}
    write_atomically(run.path / "metrics.prom", openmetrics(sealed, summary))
    write_atomically(run.path / "bmf.json", json.dumps(bmf(summary), indent=2) + "\n")
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
