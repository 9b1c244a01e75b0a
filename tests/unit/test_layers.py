"""The controller's layers as folders (docs/architecture.md): each layer imports only
the layers below it, and no controller module grows past MAX_LINES.

    controller/phases.py, commands.py, sweep.py   the command layer: imports any layer
    controller/output/     may import run, analysis
    controller/analysis/   may import run
    controller/nodes/      may import run
    controller/run/        imports no other layer

Every import counts, a lazy one inside a function or one under TYPE_CHECKING too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONTROLLER = Path(__file__).resolve().parents[2] / "parbench" / "controller"
MAX_LINES = 450

#: layer -> the layers it may import (besides itself); "top" is the command layer
ALLOWED = {
    "run": set(),
    "nodes": {"run"},
    "analysis": {"run"},
    "output": {"run", "analysis"},
    "top": {"run", "nodes", "analysis", "output"},
}


def layer_of(module: str) -> str:
    """The layer of a dotted controller module name (``parbench.controller.nodes.push``:
    nodes)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[2] in ALLOWED and parts[2] != "top" else "top"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every controller module or package ``path`` imports."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            if node.module is None:  # from . import a, b: each name a module
                found += [(node.lineno, f"{stem}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, stem))
    root_name = f"{root.parent.name}.{root.name}"
    return [(line, m) for line, m in found if m == root_name or m.startswith(root_name + ".")]


def violations(root: Path) -> list[str]:
    """Each import against the direction of the layers, and each module over MAX_LINES."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root.parent)
        layer = layer_of(module_name(path, root))
        for line, target in imported(path, root):
            other = layer_of(target)
            if other != layer and other not in ALLOWED[layer]:
                found.append(f"{where}:{line}: the {layer} layer imports {target} ({other})")
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            found.append(f"{where}: {lines} lines, more than {MAX_LINES}")
    return found


def test_the_controller_keeps_its_layers_and_its_modules_short() -> None:
    assert {p.name for p in CONTROLLER.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "run",
        "nodes",
        "analysis",
        "output",
    }
    assert violations(CONTROLLER) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "parbench" / "controller"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    "source",
    [
        "from ..nodes.locks import user_name\n",  # relative, to a module
        "from ..nodes import push\n",  # relative, a module by name
        "from parbench.controller.output.report import table\n",  # absolute
        "import parbench.controller.analysis.samples\n",
        "def f():\n    from .. import phases\n",  # lazy, and the command layer
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..nodes.locks import X\n",
    ],
)
def test_an_import_against_the_layers_is_found(tmp_path: Path, source: str) -> None:
    root = _tree(tmp_path, {"run/__init__.py": "", "run/run.py": source})
    [found] = violations(root)
    assert found.startswith("controller/run/run.py:")


def test_imports_down_the_layers_and_within_one_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "run/__init__.py": "",
            "run/run.py": "from .plan import x\nfrom . import rundir\n",
            "nodes/push.py": "from ..run.reference import PushError\nfrom . import remote\n",
            "output/report.py": "from ..analysis import stats\n"
            "from parbench.controller.run import run\n",
            "phases.py": "from .nodes import push\nfrom .output import report\n",
        },
    )
    assert violations(root) == []


def test_a_long_module_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"analysis/stats.py": "x = 1\n" * (MAX_LINES + 1)})
    assert violations(root) == [
        f"controller/analysis/stats.py: {MAX_LINES + 1} lines, more than 450"
    ]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``root`` it imports: every import, a lazy one inside a
    function or one under TYPE_CHECKING too. ``from package import name`` imports
    ``package.name`` when that is a module, else the package."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                stem = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                for a in node.names:
                    targets.add(f"{stem}.{a.name}" if f"{stem}.{a.name}" in paths else stem)
        graph[name] = targets & paths.keys()
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each set of modules that import one another,
    directly or not (a strongly connected component of more than one module, or a module
    importing itself), sorted."""

    def reached(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        return seen

    reach = {m: reached(m) for m in graph}
    found = {frozenset(o for o in reach[m] if m in reach[o]) for m in graph if m in reach[m]}
    return sorted(sorted(group) for group in found)


@pytest.mark.parametrize("root", ["controller", "worker"])
def test_no_import_cycles(root: str) -> None:
    """No module imports, through any chain, one that imports it back: not lazily inside a
    function (an import that works only in one order), not under TYPE_CHECKING."""
    assert cycles(import_graph(CONTROLLER.parent / root)) == []


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (  # lazy, inside a function
            {"a.py": "from .b import x\n", "b.py": "def f():\n    from .a import y\n"},
            ["parbench.controller.run.a", "parbench.controller.run.b"],
        ),
        (  # through a third module, and a module named with from-package-import
            {
                "a.py": "from . import b\n",
                "b.py": "import parbench.controller.run.c\n",
                "c.py": "from parbench.controller.run.a import z\n",
            },
            [f"parbench.controller.run.{m}" for m in "abc"],
        ),
        (  # under TYPE_CHECKING
            {
                "a.py": "from .b import x\n",
                "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from .a import Y\n",
            },
            ["parbench.controller.run.a", "parbench.controller.run.b"],
        ),
    ],
)
def test_an_import_cycle_is_found(tmp_path: Path, files: dict[str, str], cycle: list[str]) -> None:
    root = _tree(
        tmp_path,
        {"run/__init__.py": "", "run/d.py": "from .a import x\n"}
        | {f"run/{name}": text for name, text in files.items()},
    )
    assert cycles(import_graph(root)) == [cycle]


def printing(path: Path) -> list[int]:
    """The lines of ``path`` that call ``print``."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


#: where the console's streams are named: the console, and the lower layers' fallback
#: before it is installed (controller/run/say.py)
STREAMS_NAMED_IN = {"output", "run/say.py"}


def _outside_output() -> list[Path]:
    """Every controller module outside the output layer, and fabfile.py (its tasks print
    through the console too)."""
    return [
        *(
            p
            for p in sorted(CONTROLLER.rglob("*.py"))
            if p.relative_to(CONTROLLER).parts[0] != "output"
        ),
        CONTROLLER.parent / "tasks.py",
    ]


def test_only_the_output_layer_prints() -> None:
    """What any other controller module, or a task of fabfile.py, tells a person goes
    through controller/output/console.py: the command layer and the tasks call it, the
    layers below it speak through controller/run/say.py (which fabfile.py points at the
    console)."""
    found = [
        f"{path.relative_to(CONTROLLER.parent)}:{line}"
        for path in _outside_output()
        for line in printing(path)
    ]
    assert found == []


def test_no_module_below_the_output_layer_writes_to_the_process_streams() -> None:
    """No ``sys.stdout.write`` instead of a print either (nor in fabfile.py)."""
    found = [
        f"{path.relative_to(CONTROLLER.parent)}:{node.lineno}"
        for path in _outside_output()
        if path.relative_to(CONTROLLER.parent).as_posix().removeprefix("controller/")
        not in STREAMS_NAMED_IN
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in ("stdout", "stderr")
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert found == []


def test_no_two_classes_share_a_name() -> None:
    """A class name says which class (no two Outcome, two Reference...) across the
    controller, the worker and the fabfile."""
    root = CONTROLLER.parent
    where: dict[str, list[str]] = {}
    paths = [*sorted(root.glob("controller/**/*.py")), *sorted(root.glob("worker/**/*.py"))]
    for path in [*paths, root / "tasks.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(f"{path.relative_to(root)}:{node.lineno}")
    assert {name: at for name, at in where.items() if len(at) > 1} == {}


#: methods that invoke's runner calls (controller/nodes/remote.py overrides them)
CALLED_BY_LIBRARIES = {"read_our_stdin", "_handle_output"}


def reexports_only(tree: ast.Module) -> bool:
    """Whether a module only re-exports (a package's __init__.py: its docstring, imports
    and ``__all__``): naming a function there is not using it."""
    return all(
        isinstance(node, (ast.Import, ast.ImportFrom))
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        or (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
        )
        for node in tree.body
    )


def unused(root: Path, bench: Path | None = None) -> list[str]:
    """Dead code: each function or class of the controller, the worker or the benchmarks
    whose name appears nowhere in them but where it is defined (tests do not count, nor
    a package's re-exports: worker/protocol/__init__.py)."""
    import re
    from collections import Counter

    paths = [p for d in ("controller", "worker") for p in sorted(root.glob(f"{d}/**/*.py"))]
    paths += sorted(bench.glob("**/*.py")) if bench else []
    fabfile = root / "tasks.py"
    texts = [p.read_text() for p in paths]
    trees = [ast.parse(t) for t in texts]
    counted = [t for t, tree in zip(texts, trees) if not reexports_only(tree)]
    counted += [fabfile.read_text()] if fabfile.exists() else []
    words = Counter(w for t in counted for w in re.findall(r"\w+", t))
    return [
        f"{path.relative_to(root if path.is_relative_to(root) else root.parent)}"
        f":{node.lineno}: {node.name}"
        for path, tree in zip(paths, trees)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and not node.name.startswith("__")
        and words[node.name] <= 1
        and node.name not in CALLED_BY_LIBRARIES
    ]


def test_no_function_only_a_test_calls() -> None:
    assert unused(CONTROLLER.parent, CONTROLLER.parents[1] / "bench") == []


def test_a_function_only_a_package_reexports_is_dead(tmp_path: Path) -> None:
    """worker/protocol/__init__.py names every function of the contract: that is no use."""
    files = {
        "controller/run.py": "from worker.protocol import used\nused()\n",
        "worker/protocol/__init__.py": (
            '"""The contract."""\n\nfrom worker.protocol.lines import helper, used\n\n'
            '__all__ = ["helper", "used"]\n'
        ),
        "worker/protocol/lines.py": "def helper():\n    pass\n\n\ndef used():\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert unused(tmp_path) == ["worker/protocol/lines.py:1: helper"]


def layout_spelled(root: Path) -> list[str]:
    """Each string in controller/ and worker/ that spells a piece of the node's layout
    instead of naming worker/layout.py's constant: the partial-file suffix, or a folder of
    the workdir as a path prefix (``"worker/"``). The layout itself and the probe's checked
    copies (worker/probe.py, ``PROBE_COPIES``) are where they are written."""
    from parbench.worker import layout

    prefixes = {f"{folder}/" for folder in (*layout.FOLDERS, layout.VENV)}
    partial = layout.PARTIAL.lstrip(".")
    found: list[str] = []
    for path in [*sorted(root.glob("controller/**/*.py")), *sorted(root.glob("worker/**/*.py"))]:
        where = path.relative_to(root).as_posix()
        if where in ("worker/layout.py", "worker/probe.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and (partial in text or text in prefixes):
                found.append(f"{where}:{node.lineno}: {text!r}")
    return found


def test_the_node_layout_is_spelled_only_in_worker_layout() -> None:
    assert layout_spelled(CONTROLLER.parent) == []
