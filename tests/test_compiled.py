"""The compiled data plane (meshproxy.compiled, setup.py): built whole, and never stale."""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

from meshproxy import compiled

EXTENSION = "x.cpython-311-x86_64-linux-gnu.so"


def _module(source: Path) -> str:
    relative = source.relative_to(compiled.PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts)


def test_a_build_covers_every_listed_module_or_none() -> None:
    """Half a build (a module added since, a failed compile) would leave part of the
    data plane on other code than the rest; CI (make test) always tests the built one."""
    built = [source for source in compiled.sources() if compiled.extension(source)]
    expected = os.environ.get("CI") == "true" and os.environ.get("MESHPROXY_COMPILE") != "0"
    if built or expected:
        assert built == compiled.sources()


def test_the_compiled_modules_are_the_ones_imported() -> None:
    for source in compiled.sources():
        built = compiled.extension(source)
        if built is None:
            pytest.skip("interpreted: make interpreted, or MESHPROXY_COMPILE=0")
        assert importlib.import_module(_module(source)).__file__ == str(built)


def test_interpreted_modules_stay_out_of_the_build() -> None:
    names = {source.relative_to(compiled.PACKAGE).as_posix() for source in compiled.sources()}
    assert "proxy/core/machine.py" in names
    assert "proxy/server/connection.py" in names
    assert not names & compiled.INTERPRETED


def test_an_extension_older_than_its_source_is_stale(tmp_path: Path) -> None:
    core = tmp_path / "proxy" / "core"
    core.mkdir(parents=True)
    source, built = core / "x.py", core / EXTENSION
    source.write_text("")
    built.write_bytes(b"")
    os.utime(built, (1_000_000, 1_000_000))
    assert compiled.stale(tmp_path) == [source]
    os.utime(built)  # rebuilt after the edit
    os.utime(source, (1_000_000, 1_000_000))
    assert compiled.stale(tmp_path) == []
    assert compiled.sources(tmp_path) == [source]


def test_an_extension_of_a_module_no_longer_compiled_is_stale(tmp_path: Path) -> None:
    server = tmp_path / "proxy" / "server"
    server.mkdir(parents=True)
    (server / "node.py").write_text("")  # interpreted (compiled.INTERPRETED)
    orphan = server / "node.cpython-311-x86_64-linux-gnu.so"
    orphan.write_bytes(b"")
    assert compiled.stale(tmp_path) == [orphan]


def test_no_compiled_function_reuses_an_exception_name_for_another_type() -> None:
    """mypyc gives a name one type per function: `except A as error` then `except B as
    error` raises TypeError when B is caught (seen in core/request.py)."""
    reused = []
    for source in compiled.sources():
        for function in ast.walk(ast.parse(source.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            caught: dict[str, set[str]] = {}
            for node in ast.walk(function):
                if isinstance(node, ast.ExceptHandler) and node.name and node.type:
                    caught.setdefault(node.name, set()).add(ast.unparse(node.type))
            reused += [f"{source.name}:{function.name}:{name}"
                       for name, types in caught.items() if len(types) > 1]
    assert reused == []
