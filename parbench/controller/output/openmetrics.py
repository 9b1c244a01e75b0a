"""``metrics.prom``: the run's headline figures as OpenMetrics text (prometheus_client's
writer), for node_exporter's textfile collector; and ``--pushgateway URL``: the same
figures pushed to a Prometheus Pushgateway.

A series is one benchmark: its labels are the phase, the config hash and the run's own
labels, never the run id (that would start a new series every night). When the run
began is a value, ``parbench_run_timestamp_seconds``, as Prometheus's own
``*_timestamp_seconds`` gauges are. The push replaces the group ``job=parbench`` plus the
run's labels, so each night's figures replace the night before's in the gateway.
"""

from __future__ import annotations

import calendar
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from typing import Any, Optional

from parbench.worker.protocol import TIMED_PHASES

from ..run.labels import reserved_label
from ..run.rundir import RunDir
from .clean import clean

PREFIX = "parbench_"
#: the Pushgateway's job label
JOB = "parbench"
#: seconds a push waits for the gateway
PUSH_TIMEOUT = 30.0


class PushOptionError(ValueError):
    """``--pushgateway`` is not a URL a push could go to (bad input: exit 2)."""


class PushFailed(RuntimeError):
    """The gateway could not be reached or refused the push; the message names the URL."""


def stable_labels(sealed: dict) -> dict[str, str]:
    """The run's labels that may label a series (not a reserved name, which a run sealed
    before they were refused may carry: it would replace one of ours)."""
    labels = {str(k): str(v) for k, v in (sealed.get("labels") or {}).items()}
    return {clean(k): clean(v) for k, v in labels.items() if not reserved_label(k)}


def started(sealed: dict) -> Optional[float]:
    """When the run was sealed, in Unix seconds (None when run.json does not say)."""
    try:
        return float(calendar.timegm(time.strptime(sealed["created"], "%Y-%m-%dT%H:%M:%SZ")))
    except (KeyError, TypeError, ValueError):
        return None


def _gauges(sealed: dict, summary: dict) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    labels = stable_labels(sealed)
    names = ["phase", "config_hash", *sorted(labels)]

    def family(name: str, text: str, unit: str = "") -> Any:
        return GaugeMetricFamily(PREFIX + name, text, labels=names, unit=unit)

    begun = family("run_timestamp_seconds", "when the run began (Unix seconds)")
    throughput = family("throughput_bytes_per_second", "aggregate throughput (last done)")
    first = family("first_done_bytes_per_second", "throughput until the first client was done")
    p99 = family("file_latency_p99_seconds", "p99 of a whole file's time (meta: of a create)")
    ops = family("ops_per_second", "metadata operations per second, all kinds")
    valid = family("valid", "1 when the phase's figures can be trusted")
    errors = family("errors", "client records that are not ok")
    when = started(sealed)
    for phase in TIMED_PHASES:  # figures become metrics (verify phases: pass/fail, JUnit)
        figures = summary.get(phase)
        if not isinstance(figures, dict):
            continue
        config = clean(str(figures.get("config_hash", "")))
        values = [phase, config, *(labels[k] for k in sorted(labels))]
        if when is not None:
            begun.add_metric(values, when)
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
    yield from (g for g in (begun, throughput, first, p99, ops, valid, errors) if g.samples)


def _registry(sealed: dict, summary: dict) -> Any:
    from prometheus_client import CollectorRegistry

    class Figures:
        def collect(self) -> Iterator[Any]:
            return _gauges(sealed, summary)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Figures())  # type: ignore[arg-type]
    return registry


def openmetrics(sealed: dict, summary: dict) -> str:
    """The run's headline figures as OpenMetrics text (``sealed``: its run.json)."""
    from prometheus_client.openmetrics.exposition import generate_latest

    return generate_latest(_registry(sealed, summary)).decode()


def gateway_url(text: str) -> str:
    """``--pushgateway``: an http(s) URL with a host (checked before anything runs)."""
    parsed = urllib.parse.urlsplit(text.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PushOptionError(
            f"--pushgateway {text}: expected the gateway's http(s) URL, e.g."
            " http://pushgateway.example:9091"
        )
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise PushOptionError(f"--pushgateway {text}: the port is not a number") from None
    return text.strip().rstrip("/")


def grouping_key(sealed: dict) -> dict[str, str]:
    """The group a run's figures replace in the gateway (besides job=parbench): the
    run's labels, which stay the same night after night."""
    return stable_labels(sealed)


def push(run: RunDir, url: str) -> None:
    """Push the run's figures to the Pushgateway at ``url`` (PUT: they replace the group's)."""
    from prometheus_client import push_to_gateway

    sealed = run.read_doc("run.json") or {}
    summary = {k: v for k, v in run.read_doc("summary.json", {}).items() if k != "schema"}
    try:
        push_to_gateway(
            url,
            job=JOB,
            registry=_registry(sealed, summary),
            grouping_key=grouping_key(sealed),
            timeout=PUSH_TIMEOUT,
        )
    except urllib.error.HTTPError as exc:
        raise PushFailed(
            f"pushgateway {url}: refused the figures of {run.run_id}: HTTP {exc.code} {exc.reason}"
        ) from None
    except urllib.error.URLError as exc:
        raise PushFailed(
            f"pushgateway {url}: cannot push the figures of {run.run_id}: {exc.reason}"
            "; is the gateway running there?"
        ) from None
    except OSError as exc:
        raise PushFailed(
            f"pushgateway {url}: cannot push the figures of {run.run_id}: {exc}"
        ) from None
