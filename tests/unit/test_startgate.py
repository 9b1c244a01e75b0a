"""The controller's barrier across node threads and its stream watcher."""

from __future__ import annotations

import threading
import time

from controller.startgate import ReadyWatcher, StartGate


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
    starts = {start for _, start in got.values()}
    assert len(starts) == 1 and gate.start in starts
    last_arrival = max(at for at, _ in got.values())
    assert gate.start - last_arrival > 0.2  # the margin counts from the last arrival
    assert gate.late == []


def test_a_node_that_leaves_holds_no_one_up() -> None:
    gate = StartGate(["a", "b"], margin=0.1, ready_timeout=30)
    got: dict = {}
    thread = _arrive_later(gate, "a", 0, got)
    time.sleep(0.2)
    assert thread.is_alive()  # waiting for b
    gate.leave("b")
    thread.join(5)
    assert not thread.is_alive() and got["a"][1] == gate.start


def test_after_the_ready_timeout_the_others_go_and_a_late_node_is_named() -> None:
    gate = StartGate(["a", "b"], margin=0.1, ready_timeout=0.5)
    began = time.time()
    start = gate.arrive("a")
    assert 0.5 <= time.time() - began < 5
    assert gate.arrive("b") == start  # already past: b starts at once
    assert gate.late == ["b"]


def test_the_watcher_answers_the_ready_line_once_on_the_nodes_clock() -> None:
    gate = StartGate(["n0"], margin=0.1, ready_timeout=5)
    watcher = ReadyWatcher(gate, "n0", clock_offset=100.0)
    assert watcher.submit("write n0: starting\n") == []
    assert watcher.submit("not-parbench-ready n0\n") == []
    (answer,) = watcher.submit("write n0: starting\nparbench-ready n0 2 clients\n")
    word, when = answer.split()
    assert word == "go" and answer.endswith("\n")
    assert abs(float(when) - (gate.start + 100.0)) < 1e-5
    assert watcher.submit("write n0: starting\nparbench-ready n0 2 clients\nmore\n") == []
