"""Runs pproxy's command line on uvloop, as pproxy itself means to.

pproxy 2.7.9 calls `uvloop.install()` and then `asyncio.get_event_loop()`; since uvloop
0.22 that policy no longer makes a loop on demand, so pproxy exits at start ("There is no
current event loop"). This sets one first. Run by the Python of pproxy's venv:
`python run_pproxy.py -l http://127.0.0.1:PORT`.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop
from pproxy.server import main  # type: ignore[import-untyped, import-not-found, unused-ignore]


def _install() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(uvloop.new_event_loop())


if __name__ == "__main__":
    uvloop.install = _install  # pproxy calls it before it asks for the loop
    sys.exit(main())
