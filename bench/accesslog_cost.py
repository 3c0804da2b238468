"""What the access log costs a proxy node: CPU per 1 KiB request, log on against log off.

    .venv/bin/python -m bench.accesslog_cost                 # 3 rounds of 20,000 requests each
    .venv/bin/python -m bench.accesslog_cost --requests 5000 --rounds 1

For machines without wrk and nginx (which `bench.proxies` needs; its `meshproxy` and
`meshproxy-nolog` rows measure the same under wrk). A `meshproxy proxy` process pinned to
CPU 1 (`bench.proxies.rig`), an asyncio origin answering 1 KiB and asyncio clients on
keep-alive connections in this process; the node's CPU time (user + system, every
thread: the writer's too) is read from /proc around each run. Rounds alternate (on, off,
on, off ...) so drift on a shared machine falls on both. Loopback only, bounded in
requests and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.proxies import rig

BODY = b"x" * 1024
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (
    len(BODY), BODY
)
CONNECTIONS = 8
ROUND_SECONDS = 120.0  # a round that takes longer is cut (and says so)


async def _origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
    writer.close()


async def _client(proxy_port: int, request: bytes, count: int, deadline: float) -> int:
    reader, writer = await asyncio.open_connection(rig.HOST, proxy_port)
    done = 0
    try:
        while done < count and time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"proxy answered {head[:60]!r}")
            await reader.readexactly(len(BODY))
            done += 1
    finally:
        writer.close()
    return done


async def _round(proxy: rig.Server, origin_port: int, requests: int) -> tuple[int, float]:
    """(requests answered, node CPU seconds)."""
    auth = base64.b64encode(f"{rig.USER}:{rig.PASSWORD}".encode()).decode()
    request = (
        f"GET http://{rig.HOST}:{origin_port}/1k HTTP/1.1\r\nHost: {rig.HOST}:{origin_port}\r\n"
        f"Proxy-Authorization: Basic {auth}\r\n\r\n"
    ).encode()
    await _client(proxy.port, request, 50, time.monotonic() + 10)  # credentials checked once
    before = rig.tree_cpu_seconds(proxy.process.pid)
    deadline = time.monotonic() + ROUND_SECONDS
    each = requests // CONNECTIONS
    counts = await asyncio.gather(
        *(_client(proxy.port, request, each, deadline) for _ in range(CONNECTIONS))
    )
    return sum(counts), rig.tree_cpu_seconds(proxy.process.pid) - before


async def _main(options: argparse.Namespace) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {0})  # the clients and the origin off the node's CPU
    server = await asyncio.start_server(_origin, rig.HOST, 0)
    origin_port = server.sockets[0].getsockname()[1]
    meshproxy = str(Path(sys.executable).with_name("meshproxy"))
    results: dict[str, list[float]] = {"log on": [], "log off": []}
    with tempfile.TemporaryDirectory(prefix="meshproxy-accesslog-") as scratch:
        for index in range(options.rounds):
            for name, logging_on in (("log on", True), ("log off", False)):
                workdir = Path(scratch) / f"{index}-{'on' if logging_on else 'off'}"
                proxy = await asyncio.to_thread(
                    rig.start_meshproxy, workdir, meshproxy, metering=True,
                    access_log=logging_on,
                )  # fmt: skip
                try:
                    answered, cpu = await _round(proxy, origin_port, options.requests)
                finally:
                    await asyncio.to_thread(proxy.stop)
                if answered < options.requests - CONNECTIONS:
                    print(f"{name}: only {answered} requests within {ROUND_SECONDS:.0f} s")
                results[name].append(cpu / answered * 1e6)
                print(f"round {index + 1} {name}: {cpu / answered * 1e6:.1f} µs CPU a request "
                      f"({answered} requests)")  # fmt: skip
                if logging_on:
                    lines = (workdir / "access.log").read_text().count("\n")
                    print(f"  access.log: {lines} lines")
    server.close()
    on, off = (statistics.median(results[n]) for n in ("log on", "log off"))
    print(f"median: log on {on:.1f} µs, log off {off:.1f} µs a request: "
          f"the access log costs {on - off:+.1f} µs ({(on - off) / off * 100:+.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accesslog_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="per round and setting")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
