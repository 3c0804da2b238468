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


def extensions() -> list[object]:
    if os.environ.get("MESHPROXY_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    spec = importlib.util.spec_from_file_location("compiled", HERE / "src/meshproxy/compiled.py")
    assert spec is not None and spec.loader is not None
    compiled = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compiled)
    paths = [str(path.relative_to(HERE)) for path in compiled.sources()]
    return list(
        mypycify(
            ["--config-file", str(HERE / "pyproject.toml"), *paths],
            opt_level="3",
            debug_level="0",  # no C debug information: a smaller file, nothing lost at run time
        )
    )


setup(ext_modules=extensions())
