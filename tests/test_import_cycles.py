"""No import cycle anywhere in the package: dependencies point one way.

The graph is built from the source with `ast`, not by importing, so it also sees the imports inside
functions: a loop that a deferred import hides from the interpreter is still a loop for a reader, and
it breaks as soon as someone moves the import to the top. Imports under `if TYPE_CHECKING:` never run
and are left out. The modules are those of the installed packages that pyproject.toml lists, found
where the import system finds them (the package-dir mapping), so a package left out of the list or
mapped to the wrong folder fails here too.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def package_modules() -> dict[str, Path]:
    """Every module of every package pyproject.toml installs, by dotted name."""
    packages = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    modules: dict[str, Path] = {}
    for package in packages:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is listed but cannot be imported"
        for path in sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.py")):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The package's modules that `name` imports at run time, each with the line of its first import."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target in modules and target != name:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in modules else base, node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of the graph as a closed path of module names, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def walk(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = walk(module)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    modules = package_modules()
    assert "reason_classifier.cli.main" in modules and "reason_classifier.training.train" in modules
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:], strict=False)]
        raise AssertionError("import cycle:\n  " + "\n  ".join(steps))


def test_the_cycle_check_sees_deferred_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\ndef f():\n    from .a import x\n"
    )
    (package / "c.py").write_text("import pkg.b\n")
    modules = {
        name: package / f"{name.rpartition('.')[2] if '.' in name else '__init__'}.py"
        for name in ("pkg", "pkg.a", "pkg.b", "pkg.c")
    }
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["pkg.b"] == {"pkg.a": 5}  # the TYPE_CHECKING import is not a run-time edge
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
