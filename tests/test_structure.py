"""The package's floor plan, read from its source: layers that import only downward, no import cycle,
two paths that share only the rooms below them, and public signatures with at most two positional
arguments (options by keyword)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dask_h2"
LAYERS = [  # bottom up: a module imports its own layer and those below, never one above
    ["errors", "checks", "progress", "interrupts", "jackknife"],
    ["store", "results", "cluster", "planning"],
    ["scratch"],  # a run's scratch array in the store: shared by KING and the moments path
    ["kinship"],
    ["io"],
    ["traits"],
    ["liability"],  # case-control traits by PCGC: shared by the moments and the exact path
    ["greml", "moments", "mcreml"],
    ["api"],
    ["cli", "command", "__main__", "__init__"],
]
PATHS = ("greml", "moments", "mcreml")  # the estimation paths: none imports another


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def room(module: str) -> str:
    """The top-level room of ``dask_h2.x.y``: ``x`` (the package's own ``__init__`` for ``dask_h2``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (at any depth of its code)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dask_h2"):
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                found.update(t for t in targets if t in modules)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
        assert not any(
            isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(ast.parse(path.read_text()))
        ), f"{name}: relative import (the package imports by absolute dask_h2.* paths)"
        graph[name] = found - {name}
    return graph


def layer(module: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room(module) in rooms)


def test_every_module_is_in_a_layer():
    assert all(any(room(m) in rooms for rooms in LAYERS) for m in imports())


def test_imports_go_down_the_layers_only():
    upward = [f"{a} -> {b}" for a, targets in imports().items() for b in targets
              if room(a) != "__init__" and layer(b) > layer(a)]
    assert upward == []


def test_the_paths_do_not_borrow_from_each_other():
    crossing = [f"{a} -> {b}" for a, targets in imports().items() for b in targets
                if room(a) in PATHS and room(b) in PATHS and room(a) != room(b)]
    assert crossing == []


def test_no_import_cycle():
    graph = imports()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(target):], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def public_definitions():
    """(path, node) of every public function, method (``__init__`` included) and class: those whose names,
    and whose class's name, do not start with an underscore."""
    def walk(node, private):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                hidden = private or (child.name.startswith("_") and child.name != "__init__")
                if not hidden:
                    yield child
                if isinstance(child, ast.ClassDef):
                    yield from walk(child, hidden)

    for path in sorted(PACKAGE.rglob("*.py")):
        for node in walk(ast.parse(path.read_text()), False):
            yield path.relative_to(PACKAGE.parent), node


def test_public_functions_take_at_most_two_positional_arguments():
    wide = []
    for path, node in public_definitions():
        if isinstance(node, ast.FunctionDef):
            positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
            if len(positional) > 2:
                wide.append(f"{path}:{node.lineno} {node.name}({', '.join(positional)})")
    assert wide == []


def test_public_dataclasses_are_built_by_keyword():
    positional = []
    for path, node in public_definitions():
        if isinstance(node, ast.ClassDef):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            fields = [n for n in node.body if isinstance(n, ast.AnnAssign)]
            if any(d.startswith("dataclass") for d in decorators) and len(fields) > 2 \
                    and not any("kw_only=True" in d for d in decorators):
                positional.append(f"{path}:{node.lineno} {node.name}")
    assert positional == []
