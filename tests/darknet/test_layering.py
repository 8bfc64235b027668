"""The package's layers: the Darknet formats need no torch, no module imports itself back (not even
from inside a function or a ``TYPE_CHECKING`` block), no module outgrows 600 lines, and a layer
kind is registered once with each of its tables."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "darkyolo"


def test_the_darknet_formats_load_no_torch() -> None:
    code = (
        "import sys; import darkyolo.darknet.cfg, darkyolo.darknet.weights, darkyolo.darknet.shapes; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _module_imports() -> dict[str, set[str]]:
    """Each darkyolo module -> every darkyolo module it imports anywhere (at the top, inside
    functions, under ``TYPE_CHECKING``), from the source text."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("darkyolo")
            ):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("darkyolo"))
        graph[name] = found
    return graph


def test_no_import_cycle_among_the_modules() -> None:
    graph = _module_imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert len(graph) > 40


def test_no_module_is_over_600_lines() -> None:
    sizes = {p.relative_to(PACKAGE): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > 600} == {}


def test_every_layer_kind_has_a_parser_a_shape_rule_and_a_module() -> None:
    from darkyolo.darknet.parser import PARSERS
    from darkyolo.darknet.shapes import SHAPE_RULES
    from darkyolo.darknet.specs import SECTION_KINDS
    from darkyolo.models.darknet import BUILDERS

    kinds = set(SECTION_KINDS.values())
    assert len(kinds) == 13
    assert set(PARSERS) == set(SHAPE_RULES) == set(BUILDERS) == kinds
