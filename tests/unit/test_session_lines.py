"""The contract's lines on a node's session (worker/protocol/lines.py): each kind encodes and
decodes back to itself, the lines are the ones the worker and controller always said, and
the probe (which cannot import) keeps equal copies of the contract's constants."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from parbench.worker import layout, probe, protocol
from parbench.worker.protocol import (
    AgentClock,
    AgentClockAsk,
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
from parbench.worker.results import ClientResult

WORKER = Path(__file__).resolve().parents[2] / "parbench" / "worker"
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
    (AgentClockAsk(), "clock"),
    (AgentClock(1700000000.123456), "parbench-agent clock 1700000000.123456"),
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
        ("parbench-agent clock soon", AgentClock),
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


#: the worker's modules the controller may import (DESIGN.md): each, and below a package
#: of them its modules (worker.protocol.lines)
CONTRACT = {"parbench.worker.protocol", "parbench.worker.results", "parbench.worker.layout"}


def in_contract(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CONTRACT)


def module_name(path: Path, worker: Path) -> str:
    """The dotted name of the module at ``path`` below ``worker``'s parent (a package: its
    __init__.py's folder)."""
    parts = list(path.relative_to(worker.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def worker_modules(worker: Path) -> set[str]:
    """Every module and package of the worker but the package itself: worker.agent,
    worker.protocol, worker.protocol.lines, ..."""
    return {module_name(p, worker) for p in worker.rglob("*.py")} - {module_name(worker, worker)}


def worker_imports(path: Path, worker: Path) -> set[str]:
    """The worker modules the module at ``path`` imports, by their dotted names: ``from
    worker import clients`` and ``from worker.clients import x`` are both worker.clients,
    a relative import is resolved (``path`` itself in the worker, or beside it)."""
    modules = worker_modules(worker)
    name = module_name(path, worker) if path.is_relative_to(worker) else path.stem
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(above + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def outside_contract(controller: Path, worker: Path) -> list[str]:
    """Each import of a worker module by the controller that is not the contract's."""
    return [
        f"{path.relative_to(controller.parent)}: {name}"
        for path in sorted(controller.rglob("*.py"))
        for name in sorted(worker_imports(path, worker))
        if not in_contract(name)
    ]


def contract_imports(worker: Path) -> list[str]:
    """Each import of a worker module outside the contract by a module of the contract."""
    return [
        f"{path.relative_to(worker.parent)}: {name}"
        for path in sorted(worker.rglob("*.py"))
        if in_contract(module_name(path, worker))
        for name in sorted(worker_imports(path, worker))
        if not in_contract(name)
    ]


def test_the_controller_imports_only_the_contract_from_the_worker() -> None:
    assert outside_contract(CONTROLLER, WORKER) == []


def test_the_contract_reexports_nothing_of_the_worker() -> None:
    assert {"parbench.worker.protocol.lines", "parbench.worker.results"} <= {
        module_name(p, WORKER) for p in WORKER.rglob("*.py")
    }
    assert contract_imports(WORKER) == []


def _package(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """A controller and a worker in ``tmp_path``: the worker's contract (a package, as
    worker/protocol/ is) and a module and a package that are not the contract."""
    tree = {
        "worker/__init__.py": "", "worker/clients.py": "", "worker/results.py": "",
        "worker/layout.py": "", "worker/protocol/__init__.py": "",
        "worker/protocol/lines.py": "", "worker/protocol/request.py": "",
        "worker/storage/__init__.py": "", "worker/storage/alluxio.py": "",
        "controller/__init__.py": "", **files,
    }  # fmt: skip
    for name, text in tree.items():
        (tmp_path / "parbench" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "parbench" / name).write_text(text)
    return tmp_path / "parbench" / "controller", tmp_path / "parbench" / "worker"


@pytest.mark.parametrize(
    "source",
    [
        "from parbench.worker.protocol.lines import encode_line\n",
        "from parbench.worker.protocol import lines, request\n",
        "import parbench.worker.protocol.lines\n",
        "from parbench.worker.protocol import Go, encode_line\n",
        "from parbench.worker import protocol, results\n"
        "from parbench.worker.layout import MARKER\n",
        "import parbench.worker\n",
    ],
)
def test_the_contract_is_its_modules_and_a_packages_modules(tmp_path: Path, source: str) -> None:
    controller, worker = _package(tmp_path, {"controller/nodes.py": source})
    assert outside_contract(controller, worker) == []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from parbench.worker import clients\n", "parbench.worker.clients"),
        ("from parbench.worker.clients import spawn\n", "parbench.worker.clients"),
        ("import parbench.worker.clients\n", "parbench.worker.clients"),
        ("from parbench.worker import protocol, storage\n", "parbench.worker.storage"),
        (
            "def f():\n    from parbench.worker.storage.alluxio import Client\n",
            "parbench.worker.storage.alluxio",
        ),
    ],
)
def test_any_other_worker_module_is_refused(tmp_path: Path, source: str, module: str) -> None:
    controller, worker = _package(tmp_path, {"controller/nodes.py": source})
    assert outside_contract(controller, worker) == [f"controller/nodes.py: {module}"]


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from .request import StorageConfig\nfrom parbench.worker.results import R\n", []),
        ("from . import request\nfrom ..layout import MARKER\n", []),
        ("from .. import clients\n", ["worker/protocol/lines.py: parbench.worker.clients"]),
        (
            "from ..storage import alluxio\n",
            [f"worker/protocol/lines.py: parbench.worker.storage{m}" for m in ("", ".alluxio")],
        ),
        (
            "from parbench.worker.clients import spawn\n",
            ["worker/protocol/lines.py: parbench.worker.clients"],
        ),
    ],
)
def test_the_contracts_modules_import_only_the_contract(
    tmp_path: Path, source: str, found: list[str]
) -> None:
    _, worker = _package(tmp_path, {"worker/protocol/lines.py": source})
    assert contract_imports(worker) == found
