"""The data plane compiled with mypyc: the same typed source, run as C.

pyproject.toml holds the package's metadata; this file only adds the compiled modules,
which src/meshproxy/compiled.py lists (and says why). `MESHPROXY_COMPILE=0 pip install
-e .` installs without compiling: the same code, interpreted.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "build-support"
# For the one shared library that holds the compiled code (the per-module extensions are
# stubs that import it): less of it resident in each node (docs/benchmarks.md, start-up).
COMPILE_ARGS = [
    # only PyInit_ exported: no symbol table of 2,700 names, no GOT indirection or symbol
    # relocation for the library's own functions and statics
    "-fvisibility=hidden",
    # each function its own section: the linker drops the unused runtime helpers and
    # lays the import-time code apart (build-support/import_first.ld)
    "-ffunction-sections",
    "-fdata-sections",
    # no .eh_frame: C without exceptions, nothing unwinds through it (0.15 MB)
    "-fno-asynchronous-unwind-tables",
    # error paths cold: moved out of the code that runs
    "-include",
    str(SUPPORT / "cold_errors.h"),
]
LINK_ARGS = [
    "-Wl,--gc-sections",
    # relative relocations packed (glibc >= 2.36): 170 KB of .rela.dyn become 3 KB
    "-Wl,-z,pack-relative-relocs",
    f"-Wl,-T,{SUPPORT / 'import_first.ld'}",
]


def extensions() -> list[object]:
    if os.environ.get("MESHPROXY_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    spec = importlib.util.spec_from_file_location("compiled", HERE / "src/meshproxy/compiled.py")
    assert spec is not None and spec.loader is not None
    compiled = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compiled)
    paths = [str(path.relative_to(HERE)) for path in compiled.sources()]
    built = list(
        mypycify(
            ["--config-file", str(HERE / "pyproject.toml"), *paths],
            opt_level="3",
            debug_level="0",  # no C debug information: a smaller file, nothing lost at run time
        )
    )
    for extension in built:
        if extension.name.endswith("__mypyc"):
            extension.extra_compile_args += COMPILE_ARGS
            extension.extra_link_args += LINK_ARGS
    return built


setup(ext_modules=extensions())
