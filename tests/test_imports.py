"""The package's import graph: no cycles among shoal's modules, and no private names across them.

Both read the source (ASTs), so function-local imports count as much as
top-level ones; only imports under `if TYPE_CHECKING:` are left out, since
they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import shoal

PACKAGE = Path(shoal.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str) -> list[tuple[str, str]]:
    """(module, imported name) for every `from shoal... import name` that runs."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - child.level + 1] + [base] * bool(base))
                for alias in child.names:
                    found.append((base, alias.name))
            elif isinstance(child, ast.Import):
                found.extend((alias.name, "") for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return [(module, item) for module, item in found if module.split(".")[0] == "shoal"]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name in MODULES:
        targets = set()
        for module, item in imports(name):
            target = f"{module}.{item}" if f"{module}.{item}" in MODULES else module
            if target in MODULES and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def test_no_import_cycles() -> None:
    edges = graph()
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name not in done:
            for target in sorted(edges[name]):
                walk(target, [*path, name])
            done.add(name)

    for name in sorted(edges):
        walk(name, [])


def test_the_cycle_check_sees_function_local_imports() -> None:
    # the check would be blind without this: App imports openapi inside __init__
    assert "shoal.openapi" in graph()["shoal.app"]


def test_no_private_names_imported_across_modules() -> None:
    crossing = [
        f"{name} imports {item} from {module}"
        for name in MODULES
        for module, item in imports(name)
        if item.startswith("_")
        and not item.startswith("__")
        and module != name
        and f"{module}.{item}" not in MODULES  # a private submodule of its own package
    ]
    assert crossing == []
