"""The controller's barrier across node threads and its stream watcher."""

from __future__ import annotations

import threading
import time

import pytest

from parbench.controller.nodes.startgate import AUTO_BASE, ReadyWatcher, StartGate, auto_margin


def _arrive_later(gate: StartGate, node: str, after: float, got: dict) -> threading.Thread:
    def arrive() -> None:
        time.sleep(after)
        got[node] = (time.time(), gate.arrive(node))

    thread = threading.Thread(target=arrive)
    thread.start()
    return thread


def test_every_node_gets_one_start_after_the_last_arrives() -> None:
    gate = StartGate(["a", "b", "c"], margin=0.3, ready_timeout=30)
    got: dict = {}
    threads = [_arrive_later(gate, n, d, got) for n, d in (("a", 0), ("b", 0.2), ("c", 0.6))]
    for thread in threads:
        thread.join(10)
    (start,) = {start for _, start in got.values()}
    last_arrival = max(at for at, _ in got.values())
    assert start - last_arrival > 0.2  # the margin counts from the last arrival
    assert gate.late == []


def test_a_node_that_leaves_holds_no_one_up() -> None:
    gate = StartGate(["a", "b"], margin=0.1, ready_timeout=30)
    got: dict = {}
    thread = _arrive_later(gate, "a", 0, got)
    time.sleep(0.2)
    assert thread.is_alive()  # waiting for b
    gate.leave("b")
    thread.join(5)
    assert not thread.is_alive() and got["a"][1] is not None


def test_after_the_ready_timeout_the_others_go_and_a_late_node_is_named() -> None:
    gate = StartGate(["a", "b"], margin=0.1, ready_timeout=0.5)
    began = time.time()
    start = gate.arrive("a")
    assert 0.5 <= time.time() - began < 5
    assert gate.late == []
    assert gate.arrive("b") == start  # already past: b starts at once
    assert gate.late == ["b"]


def test_a_cancelled_gate_gives_no_start_to_waiting_or_later_nodes() -> None:
    gate = StartGate(["a", "b", "c"], margin=0.1, ready_timeout=30)
    got: dict = {}
    thread = _arrive_later(gate, "a", 0, got)
    time.sleep(0.2)
    gate.cancel()
    thread.join(5)
    assert got["a"][1] is None and gate.arrive("b") is None


def test_the_watcher_answers_the_ready_line_once_on_the_nodes_clock() -> None:
    gate = StartGate(["n0", "n1"], margin=0.1, ready_timeout=5)
    watcher = ReadyWatcher(gate, "n0", clock_offset=100.0)
    assert watcher.submit("write n0: starting\n") == []
    assert watcher.submit("not-parbench-ready n0\n") == []
    gate.leave("n1")
    before = time.time()
    (answer,) = watcher.submit("write n0: starting\nparbench-ready n0\n")
    word, when = answer.split()
    assert word == "go" and answer.endswith("\n")
    assert 0.05 < float(when) - 100.0 - before < 1.0  # controller start + offset
    assert watcher.submit("write n0: starting\nparbench-ready n0\nmore\n") == []


def test_a_cancelled_watcher_tells_the_worker_to_stop() -> None:
    gate = StartGate(["n0"], margin=0.1, ready_timeout=5)
    gate.cancel()
    assert ReadyWatcher(gate, "n0", 0.0).submit("parbench-ready n0\n") == ["stop\n"]


def test_the_auto_margin_grows_with_the_slowest_round_trip_and_the_number_of_nodes() -> None:
    assert auto_margin([]) == AUTO_BASE
    loopback = auto_margin([0.0002] * 4)
    assert AUTO_BASE < loopback < 0.06
    assert auto_margin([0.0002] * 3 + [0.05]) == pytest.approx(loopback + 4 * (0.05 - 0.0002))
    assert auto_margin([0.0002] * 1000) > 1.0  # a go per node, sent one after another
