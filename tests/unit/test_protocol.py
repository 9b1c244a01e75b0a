"""The controller-worker contract: round trip, versions, fields named when bad, and the
by-hand command line building the same request as the controller."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

import parbench.worker.__main__ as worker_main
from parbench.worker.protocol import (
    REQUEST_SCHEMA,
    ClientTask,
    ExitCode,
    PhaseRequest,
    Reference,
    RequestError,
    StorageConfig,
    load_request,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUEST = PhaseRequest(
    run_id="r1",
    node="n0",
    phase="write",
    storage=StorageConfig("alluxio", "proxy", 39999, part_size=1024**2),
    clients=(ClientTask(0, "/bench/n0/0"), ClientTask(1, "/bench/n0/1")),
    dst="/bench",
    reference=Reference("/w/data/ref", 5, "ab" * 32),
    start="stdin",
    deadline=1234.5,
    controlled=True,
    out="/w/runs/r1/write.jsonl",
)


def test_round_trip() -> None:
    assert PhaseRequest.from_json(REQUEST.to_json()) == REQUEST


def _bad(edit) -> str:
    data = json.loads(REQUEST.to_json())
    edit(data)
    with pytest.raises(RequestError) as info:
        PhaseRequest.from_json(json.dumps(data))
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.update(schema="parbench.request/0"), "request.schema"),
        (lambda d: d.pop("schema"), "request.schema"),
        (lambda d: d.update(phase="dance"), "request.phase: expected one of"),
        (lambda d: d.update(node="../n1"), "request.node"),
        (lambda d: d["storage"].update(port="39999"), "request.storage.port: expected an integer"),
        (lambda d: d["storage"].update(write_type="FAST"), "request.storage.write_type"),
        (lambda d: d["clients"][1].update(client=5), "request.clients[1].client"),
        (lambda d: d["clients"][0].update(path="rel/0"), "request.clients[0].path"),
        (lambda d: d["clients"][0].update(path="/a/../b"), "request.clients[0].path"),
        (lambda d: d.update(clients=[]), "request.clients: expected at least one client"),
        (lambda d: d.update(colour="red"), "request.colour: unknown field"),
        (lambda d: d.pop("run_id"), "request.run_id: missing"),
        (lambda d: d.update(deadline="soon"), "request.deadline: expected a number"),
        (lambda d: d.update(reference=None), "request.reference"),
        (lambda d: d.update(start="at"), "request.start_at"),
        (lambda d: d.update(chunk_size=True), "request.chunk_size: expected an integer"),
    ],
)
def test_a_bad_field_is_named(edit, named) -> None:
    assert named in _bad(edit)


def test_not_json_and_unreadable_files_are_named(tmp_path) -> None:
    with pytest.raises(RequestError, match="not JSON"):
        PhaseRequest.from_json("{")
    with pytest.raises(RequestError, match="nope.json: cannot read the request"):
        load_request(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**asdict(REQUEST), "phase": "x"}))
    with pytest.raises(RequestError, match="bad.json: request.phase"):
        load_request(str(bad))


def test_the_by_hand_command_line_builds_the_same_request() -> None:
    argv = [
        "write", "--src", "/w/data/ref", "--dst", "/bench", "--node", "n0", "--nfile", "2",
        "--host", "proxy", "--run-id", "r1", "--out", "/w/runs/r1/write.jsonl",
        "--start-on-stdin", "--deadline", "1234.5", "--timeout", "600",
    ]  # fmt: skip
    built = worker_main.request_from_args(worker_main.build_parser().parse_args(argv))
    assert built == replace(REQUEST, reference=Reference("/w/data/ref"))
    assert built.schema == REQUEST_SCHEMA


def test_exit_codes() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130, 143]


def test_the_probe_keeps_the_contracts_constants_and_its_facts_load(tmp_path) -> None:
    import subprocess
    import sys

    from parbench.worker import probe
    from parbench.worker.protocol import PROBE_REFUSED, WORKDIR_MARKER, ProbeFacts

    assert (probe.REFUSED, probe.MARKER) == (PROBE_REFUSED, WORKDIR_MARKER)
    source = (REPO_ROOT / "parbench" / "worker" / "probe.py").read_text()
    done = subprocess.run(
        [sys.executable, "-c", source, str(tmp_path), "data/x"],
        capture_output=True,
        text=True,
        check=True,
    )
    facts = ProbeFacts.from_json(done.stdout)
    assert facts.python == tuple(sys.version_info[:3]) and facts.hashes == {"data/x": None}
    with pytest.raises(RequestError, match="probe.hashes.data/x: expected a string"):
        ProbeFacts.from_json(done.stdout.replace('"data/x": null', '"data/x": 5'))


def test_every_list_of_phases_comes_from_the_phase_table() -> None:
    from parbench.worker import protocol as p

    assert p.PHASES == ("write", "read", "verify-write", "verify-read", "meta", "clean")
    assert p.RECORDED_PHASES == ("write", "read", "verify-write", "verify-read", "meta")
    assert p.TIMED_PHASES == ("write", "read", "meta")
    assert p.IO_PHASES == ("write", "read")
    assert p.VERIFY_PHASES == ("verify-write", "verify-read")
    assert p.VERIFIED == {"verify-write": "write", "verify-read": "read"}
    assert p.REFERENCE_PHASES == ("write", "verify-write", "verify-read")
    assert p.COPY_PHASES == ("read", "verify-read")
    assert {n: p.BY_PHASE[n].headline_op for n in p.TIMED_PHASES} == {
        "write": "file",
        "read": "file",
        "meta": "create",
    }
    # no module of the controller or the worker spells a list of phases out again
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spelled = []
    for path in [*root.glob("parbench/controller/**/*.py"), *root.glob("parbench/worker/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) > 1:
                names = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if len(names) == len(node.elts) and set(names) <= set(p.PHASES):
                    spelled.append(f"{path.relative_to(root)}:{node.lineno}")
    assert spelled == []


def _defined(path: Path) -> list[str]:
    """The public names a module defines at its top level (its functions, classes and
    constants; not what it imports)."""
    import ast

    found: list[str] = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.append(node.name)
        elif isinstance(node, ast.Assign):
            found += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.append(node.target.id)
    return [name for name in found if not name.startswith("_")]


def test_the_contract_is_one_package_exposing_every_name_of_its_modules() -> None:
    """One contract in several modules (worker/protocol/): ``from worker.protocol import X``
    for each X any of them defines, the very object."""
    import importlib

    import parbench.worker.protocol as package

    modules = sorted((REPO_ROOT / "parbench" / "worker" / "protocol").glob("*.py"))
    assert Path(package.__file__).parent == modules[0].parent and len(modules) > 1
    missing = []
    for path in modules:
        if path.name == "__init__.py":
            continue
        module = importlib.import_module(f"parbench.worker.protocol.{path.stem}")
        missing += [
            f"{path.stem}.{name}"
            for name in _defined(path)
            if getattr(package, name, missing) is not getattr(module, name)
        ]
    assert missing == []
    assert {"PhaseRequest", "phase_request", "ExitCode", "ProbeFacts", "encode_line"} <= set(
        vars(package)
    )


def test_the_phases_an_older_run_may_lack_are_a_column_of_the_phase_table() -> None:
    """A phase added after runs were first sealed (meta) is marked in PHASE_TABLE; the
    seal's check (controller/run/seal.py) takes it from there, not from a list of its own."""
    from parbench.controller.run import seal
    from parbench.worker import protocol

    assert tuple(p.name for p in protocol.PHASE_TABLE if p.late) == protocol.LATE_PHASES
    assert protocol.LATE_PHASES == ("meta",)
    assert "LATER_PHASES" not in vars(seal)
    assert seal.LATE_PHASES is protocol.LATE_PHASES
