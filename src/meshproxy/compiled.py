"""Which modules of the data plane mypyc compiles, and whether a build is older than them.

A proxy node spends its CPU on the per-request path: the pure connection machine
(proxy/core), its asyncio driver (proxy/server), the meter and the access log. setup.py
compiles those modules (mypy strict checks them already) into C extensions beside their
.py files; everything else (API, dashboard, store, CLI) stays interpreted. Python imports
an extension before a .py of the same name, so an extension older than its source runs
old code: `stale()` finds those, and the test suite refuses to run on them.
docs/architecture.md, "The compiled data plane", has the rest.

Plain module, no imports of meshproxy: setup.py loads it by path, before anything is
installed.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
COMPILED_PACKAGES = ("proxy/core", "proxy/server", "meter", "accesslog")
# Left interpreted, each for a reason mypyc or the tests give, or because it is off the
# per-request path (a smaller extension is less memory per node, though little now that
# setup.py lays out the library so a node maps only the code it runs: SOCKS5's modules,
# which no node without a socks_port imports, cost 0.04 MiB of idle RSS compiled, and
# stay compiled for the tunnels' sake).
INTERPRETED = frozenset({
    # subclasses of OSError: mypyc compiles no subclass of most built-in types
    "proxy/server/dial.py",
    # start-up: uvloop hands lists where the stubs say tuples (compiled code checks types)
    "proxy/server/node.py",
    # tests replace Resolver's methods (DNS made local); a compiled class's are fixed
    "proxy/server/resolver.py",
    # a runtime_checkable Protocol, which compiled code cannot define
    "meter/base.py",
    # tests subclass LocalMeter (no Python class can subclass a compiled one); its
    # per-request calls are its buffer's (meter/buffer.py, compiled)
    "meter/local.py",
    # off the request path: timers, start-up, the fleet's shared counters, the CLI search
    "proxy/server/sync.py",
    "proxy/server/probe.py",
    "proxy/server/fdlimit.py",
    "proxy/server/notices.py",
    "meter/shared.py",
    "meter/fold.py",
    "meter/health.py",
    "meter/schedule.py",
    "accesslog/search.py",
    # the Redis meter's keys and the folding's sink protocol: per flush, never per request
    "meter/keys.py",
    "meter/sink.py",
})


def sources(package: Path = PACKAGE) -> list[Path]:
    """The .py files setup.py compiles."""
    found = sorted(path for folder in COMPILED_PACKAGES for path in (package / folder).glob("*.py"))
    return [path for path in found if path.relative_to(package).as_posix() not in INTERPRETED]


def extension(source: Path) -> Path | None:
    """The built extension of `source`, if there is one."""
    return next(iter(sorted(source.parent.glob(f"{source.stem}.*.so"))), None)


def stale(package: Path = PACKAGE) -> list[Path]:
    """Sources changed since their extension was built (Python would run the old code),
    and extensions of modules no longer compiled (they would shadow their .py)."""
    compiled = sources(package)
    found = []
    for source in compiled:
        built = extension(source)
        if built is not None and built.stat().st_mtime < source.stat().st_mtime:
            found.append(source)
    modules = {source.with_suffix("") for source in compiled}
    for built in sorted(package.rglob("*.so")):
        if built.with_name(built.name.split(".")[0]) not in modules:
            found.append(built)
    return found
