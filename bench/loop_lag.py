"""Where a meshproxy node's latency tail comes from (issue 11 item 5: the 64 KiB p99).

    .venv/bin/python -m bench.loop_lag [--path /64k.bin] [--seconds 5] [--rounds 3] [--keep]

Starts the nginx origin and a meshproxy node as `bench.proxies` does (the node on CPU 1,
nginx and wrk on CPU 0, loopback only), the node through this module (`--node`), which
runs `meshproxy` with a 2 ms timer on its event loop. Every tick later than 5 ms is kept
with the CPU the loop's thread and the whole process used meanwhile, and every garbage
collection is timed. Then `wrk -t1 -c50 --latency` runs against the node, and each round
prints wrk's p50/p99 beside the late ticks during the run, split by cause:

- busy: the loop's own thread ran for most of the delay (one long round of callbacks);
- threads: another thread of the node ran (the access log's writer, the usage flush);
- descheduled: neither ran, the core was given to other processes.

A tail made inside the node shows as busy or threads ticks, or as collections of the
oldest generation; one made by a shared machine shows as descheduled ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bench.proxies import load, rig

STATS_ENV = "MESHPROXY_LOOP_LAG_STATS"  # where the node writes what it saw, every 0.5 s
TICK = 0.002
LATE = 0.005


class _Watch:
    """The late ticks and the collections of one node, dumped as JSON to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.monotonic()
        self.late: list[tuple[float, float, float, float]] = []  # at, wall, loop CPU, all CPU
        self.collections = [[0, 0.0, 0.0] for _ in range(3)]  # count, seconds, longest
        self._collecting = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._collecting = time.perf_counter()
            return
        took = time.perf_counter() - self._collecting
        entry = self.collections[info["generation"]]
        entry[0] += 1
        entry[1] += took
        entry[2] = max(entry[2], took)

    def dump(self) -> None:
        text = json.dumps({"late": self.late[-20_000:], "gc": self.collections})
        self.path.with_suffix(".tmp").write_text(text)
        self.path.with_suffix(".tmp").replace(self.path)

    async def ticks(self) -> None:
        loop = asyncio.get_running_loop()
        dumped = 0.0
        while True:
            wall, thread, process = loop.time(), time.thread_time(), time.process_time()
            await asyncio.sleep(TICK)
            late = loop.time() - wall - TICK
            if late > LATE:
                self.late.append((round(time.monotonic() - self.started, 3),
                                  late * 1e3, (time.thread_time() - thread) * 1e3,
                                  (time.process_time() - process) * 1e3))  # fmt: skip
            if loop.time() - dumped > 0.5:
                dumped = loop.time()
                self.dump()


def _node(argv: list[str]) -> int:
    """`meshproxy ARGV`, watched when it serves (the `proxy` command)."""
    from meshproxy.cli import main

    stats = os.environ.get(STATS_ENV)
    if stats and argv[:1] == ["proxy"]:
        import uvloop

        watch = _Watch(Path(stats))
        gc.callbacks.append(watch.on_gc)
        run = uvloop.run

        def watched_run(node: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
            async def both() -> Any:
                ticking = asyncio.get_running_loop().create_task(watch.ticks())
                try:
                    return await node
                finally:
                    ticking.cancel()

            return run(both(), **kwargs)

        uvloop.run = watched_run  # type: ignore[assignment]  # cli/node.py's uvloop.run
    sys.argv = ["meshproxy", *argv]
    main()
    return 0


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"late": [], "gc": [[0, 0, 0]] * 3}


def _causes(late: list[list[float]]) -> str:
    busy = sum(1 for _at, wall, thread, _all in late if thread > 0.6 * wall)
    threads = sum(1 for _at, wall, thread, every in late
                  if thread <= 0.6 * wall and every - thread > 0.3 * wall)  # fmt: skip
    longest = max((wall for _at, wall, _thread, _all in late), default=0.0)
    busiest = max((thread for _at, _wall, thread, _all in late), default=0.0)
    return (f"late ticks {len(late)}: busy {busy}, threads {threads}, descheduled "
            f"{len(late) - busy - threads}; longest {longest:.0f} ms, most loop CPU in one "
            f"{busiest:.1f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--node"]:
        return _node(args[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.loop_lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default="/64k.bin", help="/1k.bin or /64k.bin")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    options = parser.parse_args(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started
    os.sched_setaffinity(0, {rig.LOAD_CPU})
    workdir = Path(tempfile.mkdtemp(prefix="meshproxy-loop-lag-"))
    launcher = workdir / "meshproxy"
    launcher.write_text(f'#!/bin/sh\nPYTHONPATH="{Path(__file__).resolve().parent.parent}" '
                        f'exec "{sys.executable}" -m bench.loop_lag --node "$@"\n')  # fmt: skip
    launcher.chmod(0o755)
    origin = rig.start_origin(workdir / "origin", 1 << 20)
    p99s: list[float] = []
    try:
        for round_no in range(1, options.rounds + 1):
            stats = workdir / f"node-{round_no}.json"
            os.environ[STATS_ENV] = str(stats)
            node = rig.start_meshproxy(workdir / f"node-{round_no}", str(launcher), metering=True)
            try:
                load.run_wrk(origin, node, options.path, 1.0, workdir)  # warm pools and caches
                time.sleep(0.6)
                before = _read(stats)
                load_average = os.getloadavg()[0]
                measured = load.run_wrk(origin, node, options.path, options.seconds, workdir)
                time.sleep(0.6)
                after = _read(stats)
            finally:
                node.stop()
            since = before["late"][-1][0] if before["late"] else 0.0
            late = [tick for tick in after["late"] if tick[0] > since]
            oldest = after["gc"][2][0] - before["gc"][2][0]
            oldest_ms = (after["gc"][2][1] - before["gc"][2][1]) * 1e3
            wrk = measured.wrk
            p99s.append(wrk.p99_ms)
            print(f"round {round_no}: {options.path} {wrk.rate:,.0f} req/s, p50 {wrk.p50_ms:.1f} "
                  f"/ p99 {wrk.p99_ms:.1f} ms, {measured.cpu_us_per_request or 0:.1f} us CPU "
                  f"per request, load average {load_average:.1f}; {_causes(late)}; oldest-"
                  f"generation collections {oldest} ({oldest_ms:.1f} ms in all)",
                  flush=True)  # fmt: skip
    finally:
        origin.stop()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"median p99 {statistics.median(p99s):.1f} ms"
          + (f"; logs in {workdir}" if options.keep else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
