"""Side-by-side proxy benchmark: meshproxy against Squid, pproxy, tinyproxy, proxy.py, direct.

    .venv/bin/python -m bench.proxies            # full run (3 rounds, about 15 minutes)
    .venv/bin/python -m bench.proxies --quick    # 1 short round, smaller transfers

Installs nothing (bench/install.sh does). Needs wrk, curl, taskset and nginx (Debian:
nginx-light); uses squid, tinyproxy, pproxy and proxy.py when present (pproxy and proxy.py
from this venv, the `bench` extra, else bench/.venv-peers; see --pproxy and --proxy-py).
Every server listens on 127.0.0.1; proxies run on CPU 1, everything else on CPU 0.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.proxies import load, rig
from bench.proxies.report import Row, render_cost_table, render_notes, render_table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_PROXY_PY = [str(VENV_BIN / "proxy"), str(REPO / "bench/.venv-peers/bin/proxy")]
DEFAULT_PPROXY = [str(VENV_BIN / "pproxy"), str(REPO / "bench/.venv-peers/bin/pproxy")]


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.proxies", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 3 s wrk runs, 256 MiB transfers, 500 tunnels")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--transfers", type=int,
                        help="1 GiB transfers of each kind per round (default 2; quick 1)")
    parser.add_argument("--big-mib", type=int, help="size of the big file (default 1024)")
    parser.add_argument("--tunnels", type=int, help="idle tunnels held (default 2000)")
    parser.add_argument("--only", default="",
                        help="comma-separated contenders (direct,squid,pproxy,tinyproxy,proxy.py,"
                             "meshproxy,meshproxy-nometer,meshproxy-nolog,meshproxy-socks5)")
    parser.add_argument("--proxy-py", help="the proxy.py executable (default: this venv's "
                        "`proxy`, then bench/.venv-peers/bin/proxy, then `proxy` on PATH)")
    parser.add_argument("--pproxy", help="the pproxy executable (default: this venv's "
                        "`pproxy`, then bench/.venv-peers/bin/pproxy, then `pproxy` on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    options = parser.parse_args(argv)
    quick = options.quick
    options.rounds = options.rounds or (1 if quick else 3)
    options.seconds = options.seconds or (3.0 if quick else 10.0)
    options.transfers = options.transfers or (1 if quick else 2)
    options.big_mib = options.big_mib or (256 if quick else 1024)
    options.tunnels = options.tunnels or (500 if quick else 2000)
    return options


def _require(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} (bench/install.sh installs "
                         "every tool of the bench)")


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


Starter = Callable[[Path], rig.Server | None]


def _contenders(options: argparse.Namespace) -> list[tuple[str, Starter | None]]:
    meshproxy = str(Path(sys.executable).with_name("meshproxy"))
    proxy_py = rig.tool(*([options.proxy_py] if options.proxy_py else DEFAULT_PROXY_PY),
                        "proxy")  # fmt: skip
    pproxy = rig.tool(*([options.pproxy] if options.pproxy else DEFAULT_PPROXY), "pproxy")
    every: list[tuple[str, Starter | None]] = [
        ("direct", None),
        ("squid", rig.start_squid),
        # Issue 11: no per-request work at all (no auth, no metering, no rotation): the
        # ceiling of Python on one core.
        ("pproxy", lambda d: rig.start_pproxy(d, pproxy)),
        ("tinyproxy", rig.start_tinyproxy),
        ("proxy.py", lambda d: rig.start_proxy_py(d, proxy_py)),
        ("meshproxy", lambda d: rig.start_meshproxy(d, meshproxy, metering=True)),
        ("meshproxy-nometer", lambda d: rig.start_meshproxy(d, meshproxy, metering=False)),
        # The access log's cost (issue 15: at most 3 % CPU per 1 KiB request): the
        # `meshproxy` row logs every request (the default), this one does not.
        ("meshproxy-nolog",
         lambda d: rig.start_meshproxy(d, meshproxy, metering=True, access_log=False)),
        # Issue 13: SOCKS5 tunnels beside CONNECT's (throughput, memory per idle tunnel);
        # wrk speaks no SOCKS, so its request columns stay empty.
        ("meshproxy-socks5", lambda d: rig.start_meshproxy(d, meshproxy, metering=True,
                                                           socks=True)),
    ]
    wanted = {n.strip() for n in options.only.split(",") if n.strip()}
    return [(n, s) for n, s in every if not wanted or n in wanted]


def _measure(
    options: argparse.Namespace, origin: rig.Server, proxy: rig.Server | None, row: Row,
    workdir: Path, skip_plain: set[str],
) -> None:
    size = options.big_mib << 20
    name = row.name
    if proxy is not None:
        tunnels = load.idle_tunnels(origin, proxy, options.tunnels, within=60.0)
        if tunnels.kib_per_tunnel is not None:
            row.tunnel_kib.append(tunnels.kib_per_tunnel)
        if tunnels.note:
            row.notes.append(f"idle tunnels: {tunnels.note}")
    for path, rates, p50s, p99s, costs in (
        ("/1k.bin", row.small_rate, row.small_p50, row.small_p99, row.small_cpu_us),
        ("/64k.bin", row.medium_rate, row.medium_p50, row.medium_p99, row.medium_cpu_us),
    ) if proxy is None or not proxy.socks else ():
        measured = load.run_wrk(origin, proxy, path, options.seconds, workdir)
        result = measured.wrk
        if result.failed:
            row.notes.append(f"{path}: {result.failed} failed of {result.requests} requests "
                             "(rate not counted)")  # fmt: skip
            continue
        rates.append(result.rate)
        p50s.append(result.p50_ms)
        p99s.append(result.p99_ms)
        if measured.cpu_us_per_request is not None:
            costs.append(measured.cpu_us_per_request)
    max_seconds = 60.0 if not options.quick else 20.0
    if proxy is None:  # direct: no tunnel to make; every transfer is the base of both columns
        for _ in range(2 * options.transfers):
            done = load.transfer(origin, None, size, tunnel=False, max_seconds=max_seconds)
            if done.mbps is not None:
                row.connect_mbps.append(done.mbps)
                row.plain_mbps.append(done.mbps)
        return
    for _ in range(options.transfers):
        for tunnel, rates, costs in (
            (True, row.connect_mbps, row.connect_core_s_per_gb),
            (False, row.plain_mbps, row.plain_core_s_per_gb),
        ):
            if not tunnel and (name in skip_plain or proxy.socks):
                continue
            done = load.transfer(origin, proxy, size, tunnel=tunnel, max_seconds=max_seconds)
            if done.mbps is None:
                kind = "CONNECT" if tunnel else "plain"
                row.notes.append(f"{kind} {options.big_mib} MiB did not finish: {done.note}")
                if not tunnel:
                    skip_plain.add(name)  # one timed-out transfer per run is enough
                continue
            rates.append(done.mbps)
            if done.core_s_per_gb is not None:
                costs.append(done.core_s_per_gb)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    _require("wrk", "curl", "taskset")
    if os.cpu_count() is None or (os.cpu_count() or 0) < 2:
        raise SystemExit("needs 2 CPUs: proxies on CPU 1, load and origin on CPU 0")
    _raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started
    os.sched_setaffinity(0, {rig.LOAD_CPU})
    workdir = Path(tempfile.mkdtemp(prefix="meshproxy-bench-"))
    contenders = _contenders(options)
    rows = {name: Row(name) for name, _ in contenders}
    versions: dict[str, str] = {}
    loads: list[float] = []
    skip_plain: set[str] = set()
    started = time.monotonic()
    origin = rig.start_origin(workdir / "origin", options.big_mib << 20)
    try:
        # The first read of the big file is slow (its pages are new): not part of any row.
        load.transfer(origin, None, options.big_mib << 20, tunnel=False, max_seconds=60)
        for round_no in range(1, options.rounds + 1):
            for name, start in contenders:
                proxy = None
                if start is not None:
                    proxy = start(workdir / f"{name}-{round_no}")
                    if proxy is None:
                        if round_no == 1:
                            rows[name].notes.append("not installed")
                        continue
                    versions[name] = proxy.version
                loads.append(os.getloadavg()[0])
                try:
                    _measure(options, origin, proxy, rows[name], workdir, skip_plain)
                finally:
                    if proxy is not None:
                        proxy.stop()
                row = rows[name]
                print(f"round {round_no} {name}: 1k {row.small_rate[-1:]} "
                      f"64k {row.medium_rate[-1:]} connect {row.connect_mbps[-2:]} "
                      f"plain {row.plain_mbps[-2:]} tunnel KiB {row.tunnel_kib[-1:]} "
                      f"notes {row.notes}", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        origin.stop()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    ordered = [rows[name] for name, _ in contenders]
    print(render_table(ordered))
    print()
    print(render_cost_table(ordered))
    print()
    notes = render_notes(ordered)
    if notes:
        print(notes)
    print(f"- versions: nginx {origin.version}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    print(f"- {options.rounds} rounds, wrk {options.seconds:g} s, {options.transfers} "
          f"transfers of {options.big_mib} MiB per round, {options.tunnels} idle tunnels; "
          f"1-min load average {min(loads, default=0):.2f}-{max(loads, default=0):.2f}; "
          f"{(time.monotonic() - started) / 60:.1f} min")
    if options.keep:
        print(f"- logs in {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
