"""Instructions a 1 KiB request costs a proxy node, counted by valgrind's callgrind.

    .venv/bin/python -m bench.instructions                 # log on and off, 2,000 requests
    .venv/bin/python -m bench.instructions --requests 4000 --only on

CPU seconds on a shared 2-core machine move by more than the effects worth measuring
(the access log's few per cent: docs/benchmarks.md); instructions do not: the same
binary, inputs and environment count the same whatever else the machine runs. A
`meshproxy proxy` under `valgrind --tool=callgrind --instr-atstart=no` (metering off
and the timers slowed, QUIET: their work grows with the wall time of a run), an asyncio
origin answering 1 KiB and keep-alive clients in this process (bench.accesslog_cost's);
counting is switched on after a warm-up (`callgrind_control -i on`), and the node's
every thread is counted until `callgrind_control -d`. Loopback only, bounded in requests
and time. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.proxies import rig

from bench import accesslog_cost

START_SECONDS = 120.0  # a node under valgrind starts some 30x slower
CONNECTIONS = 8
# The node's timers at their slowest: their work (the store's changes polled every 0.25 s
# by default) grows with the wall time of a run, which valgrind stretches ~30x, and would
# be counted against the requests.
QUIET = "sync_interval = 60\nquota_check_interval = 2\nhealth_check_interval = 3600\n"


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def _total(out_dir: Path) -> int:
    """The instructions of every dump (all threads) the node wrote."""
    total = 0
    for path in out_dir.glob("callgrind.out*"):
        for text_line in path.read_text(errors="replace").splitlines():
            if text_line.startswith("totals:") or text_line.startswith("summary:"):
                total += int(text_line.split()[1])
                break
    return total


async def _measure(workdir: Path, origin_port: int, requests: int, access_log: bool) -> float:
    out_dir = workdir / "callgrind"
    out_dir.mkdir(parents=True)
    wrapper = (
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.out.%p",
    )  # fmt: skip
    meshproxy = str(Path(sys.executable).with_name("meshproxy"))
    node = await asyncio.to_thread(
        rig.start_meshproxy, workdir / "node", meshproxy, metering=False,
        access_log=access_log, wrapper=wrapper, start_seconds=START_SECONDS,
        proxy_settings=QUIET,
    )  # fmt: skip
    try:
        auth = base64.b64encode(f"{rig.USER}:{rig.PASSWORD}".encode()).decode()
        request = (
            f"GET http://{rig.HOST}:{origin_port}/1k HTTP/1.1\r\n"
            f"Host: {rig.HOST}:{origin_port}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
        ).encode()
        deadline = time.monotonic() + 600
        client = accesslog_cost._client
        warm = [client(node.port, request, 100, deadline) for _ in range(CONNECTIONS)]
        await asyncio.gather(*warm)  # credentials checked, code paths warm
        pid = str(node.process.pid)
        await asyncio.to_thread(_callgrind_control, "-i", "on", pid)
        each = requests // CONNECTIONS
        counts = await asyncio.gather(
            *(client(node.port, request, each, deadline) for _ in range(CONNECTIONS))
        )
        await asyncio.to_thread(_callgrind_control, "-d", pid)
    finally:
        await asyncio.to_thread(node.stop)
    answered = sum(counts)
    if answered < each * CONNECTIONS:
        raise SystemExit(f"only {answered} of {each * CONNECTIONS} requests answered")
    return _total(out_dir) / answered


async def _main(options: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    server = await asyncio.start_server(accesslog_cost._origin, rig.HOST, 0)
    origin_port = server.sockets[0].getsockname()[1]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="meshproxy-instructions-") as temporary:
        scratch = options.keep or temporary
        for name in options.only.split(","):
            per_request = await _measure(
                Path(scratch) / name, origin_port, options.requests, access_log=name == "on"
            )
            results[name] = per_request
            print(f"access log {name}: {per_request / 1000:.1f}k instructions a request")
    server.close()
    if "on" in results and "off" in results:
        on, off = results["on"], results["off"]
        print(f"the access log costs {(on - off) / 1000:+.1f}k instructions a request "
              f"({(on - off) / off * 100:+.1f} %)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--only", default="on,off", help="on, off or on,off (the access log)")
    parser.add_argument("--keep", metavar="DIR", help="write the callgrind files under DIR (new)"
                        " for callgrind_annotate")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
