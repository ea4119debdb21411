"""The package's layering (docs/design.md): contracts held, no import cycle, imports at the top."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nestopt

PACKAGE = Path(nestopt.__file__).parent
ROOT = Path(__file__).parents[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _relative_imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for each relative import in ``path``."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            out.append((target, id(node) in top_level))
    return out


def test_internal_imports_sit_at_module_top():
    # Imports inside functions hide the structure; only optional packages are imported late.
    late = [
        f"{name} imports {target} inside a function"
        for name, path in _modules().items()
        for target, at_top in _relative_imports(name, path)
        if not at_top
    ]
    assert not late, late


def test_no_import_cycle_between_private_modules():
    modules = _modules()
    graph = {name: set() for name in modules if "._" in name or name.count(".") >= 1}
    for name in graph:
        for target, _ in _relative_imports(name, modules[name]):
            # ``from .pkg import mod`` names a module too
            if target in graph and target != "nestopt":
                graph[name].add(target)
    graph = {k: {t for t in v if t in graph and t != "nestopt"} for k, v in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed")
def test_import_linter_contracts_hold():
    run = subprocess.run(
        [shutil.which("lint-imports"), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(PACKAGE.parent), "PATH": str(Path(sys.executable).parent)},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
