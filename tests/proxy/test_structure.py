"""The data plane's structure, read from its imports (TYPE_CHECKING ones included: they
are coupling too): no circle among its modules, and `core/` is sans-I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import meshproxy.proxy

ROOT = Path(meshproxy.proxy.__file__).parent
PACKAGE = "meshproxy.proxy"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (absolute names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_import_circle_in_the_data_plane() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(name):],
                                                                  name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            if not imported.endswith("__init__") and imported != PACKAGE:
                visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_core_imports_no_asyncio_no_socket_and_no_server() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        imports = _imports(path)
        io = {m for m in imports if m.split(".")[0] in {"asyncio", "socket", "uvloop", "selectors"}}
        server = {m for m in imports if m.startswith(f"{PACKAGE}.server")}
        assert not io and not server, (path.name, io | server)
