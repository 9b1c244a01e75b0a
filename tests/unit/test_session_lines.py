"""The contract's lines on a node's session (worker/protocol.py): each kind encodes and
decodes back to itself, the lines are the ones the worker and controller always said, and
the probe (which cannot import) keeps equal copies of the contract's constants."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from worker import layout, probe, protocol
from worker.protocol import (
    AgentDone,
    AgentReady,
    AgentStarted,
    BecomeAgent,
    Clock,
    ClockAsk,
    Go,
    LockAsk,
    LockReply,
    MessageError,
    Progress,
    Ready,
    Record,
    RunAsk,
    Stderr,
    Stop,
    decode_clock,
    decode_line,
    decode_progress,
    encode_line,
    for_the_controller,
    kind,
    ready_in,
    told_records,
)
from worker.results import ClientResult

WORKER = Path(__file__).resolve().parents[2] / "worker"
CONTROLLER = WORKER.parent / "controller"
RECORD = ClientResult("r1", "write", "n0", 0, "h", "posix", "/d/n0/0", bytes=5)

#: each kind, and its line as the worker and the controller have always framed it
LINES = [
    (Ready("n0"), "parbench-ready n0"),
    (Go(1700000000.25), "go 1700000000.250000"),
    (Stop(), "stop"),
    (Record(RECORD), "@record " + RECORD.to_json()),
    (
        Progress("write", "n0", 1, 4, 123, 2),
        '@progress {"phase": "write", "node": "n0", "done": 1, "total": 4,'
        ' "bytes": 123, "files": 2}',
    ),
    (Stderr("Traceback (most recent call last):"), "@stderr Traceback (most recent call last):"),
    (Stderr(""), "@stderr "),
    (Stderr("  indented"), "@stderr   indented"),
    (AgentReady(), "parbench-agent ready"),
    (AgentStarted(), "parbench-agent started"),
    (AgentDone(130), "parbench-agent done 130"),
    (
        LockReply({"workdir": {"held": True}, "dst": None}),
        'parbench-lock {"dst": null, "workdir": {"held": true}}',
    ),
    (LockAsk('{"action": "acquire"}'), 'lock {"action": "acquire"}'),
    (
        RunAsk("/w/runs/r/write.request.json", "{}"),
        'run {"save": "/w/runs/r/write.request.json", "request": "{}"}',
    ),
    (BecomeAgent(), "agent"),
]  # fmt: skip


@pytest.mark.parametrize(("msg", "line"), LINES)
def test_each_kind_of_line_encodes_once_and_decodes_back(msg: object, line: str) -> None:
    assert encode_line(msg) == line  # type: ignore[arg-type]
    assert decode_line(line) == msg and decode_line(line + "\n") == msg
    assert kind(line) is type(msg)


def test_the_probes_clock_is_untagged() -> None:
    assert encode_line(ClockAsk()) == "" and encode_line(Clock(12.5)) == "12.5"
    assert decode_clock("12.5\n") == Clock(12.5) and decode_clock("parbench-probe: x") is None


def test_lines_for_people_are_no_message() -> None:
    for line in ("write n0/1 ok 5 MiB", "", "go", "parbench-ready", "stopped", "agents"):
        assert decode_line(line) is None and not for_the_controller(line)


@pytest.mark.parametrize(
    ("line", "kind_"),
    [
        ("go soon", Go),
        ("parbench-agent done x", AgentDone),
        ("@record {}", Record),
        ("@record {broken", Record),
        ("parbench-lock {broken", LockReply),
        ('run {"save": 1}', RunAsk),
    ],
)
def test_a_known_kind_that_cannot_be_read_is_an_error_naming_its(line: str, kind_: type) -> None:
    with pytest.raises(MessageError) as caught:
        decode_line(line)
    assert caught.value.kind is kind_


def test_progress_of_fields_not_known_here_is_for_the_controller_but_not_drawn() -> None:
    newer = '@progress {"node": "n0", "phase": "write"}'
    assert decode_line(newer) is None and decode_progress(newer) is None
    assert for_the_controller(newer)
    assert not for_the_controller("@progress {broken")


def test_told_records_and_the_ready_line_in_a_stream() -> None:
    told = f"hello\n{encode_line(Record(RECORD))}\n@record \nparbench-ready n0\n"
    assert told_records(told, "out") == [RECORD]
    assert ready_in(told) and not ready_in("say parbench-ready n0\n")
    with pytest.raises(ValueError, match="^out:3: unknown result schema"):
        told_records(told + "@record {}\n", "out")


def test_the_probe_keeps_equal_copies_of_the_contract() -> None:
    for name, value in {**protocol.PROBE_COPIES, **layout.PROBE_COPIES}.items():
        assert getattr(probe, name) == value, name
    assert probe.STAMPED == protocol.PROBE_STAMPED
    assert (probe.REFUSED, probe.MARKER) == (protocol.PROBE_REFUSED, protocol.WORKDIR_MARKER)
    assert float(repr(1.5)) == decode_clock(repr(1.5)).at  # type: ignore[union-attr]


def _worker_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("worker.") and n.count(".") == 1}
    return found


CONTRACT = {"worker.protocol", "worker.results", "worker.layout"}


def test_the_controller_imports_only_the_contract_from_the_worker() -> None:
    modules = {p.stem for p in WORKER.glob("*.py")}
    wrong = []
    for path in sorted(CONTROLLER.rglob("*.py")):
        for name in _worker_imports(path):
            if name.split(".")[1] in modules and name not in CONTRACT:
                wrong.append(f"{path.relative_to(CONTROLLER.parent)}: {name}")
    assert wrong == []


def test_the_contract_reexports_nothing_of_the_worker() -> None:
    for name in CONTRACT:
        path = WORKER / (name.split(".")[1] + ".py")
        assert _worker_imports(path) - CONTRACT == set(), path.name
