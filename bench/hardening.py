"""Load and soak against a `meshproxy proxy` subprocess, watching its memory and descriptors.

    .venv/bin/python -m bench.hardening tunnels --count 10000 [--workers 2] [--probe N]
    .venv/bin/python -m bench.hardening soak --seconds 600 [--concurrency 64]

`tunnels`: opens COUNT CONNECT tunnels at once through one node (started with a soft
open-file limit of 1024, so the node must raise its own limit), proves each one carries
bytes both ways, holds them, closes them, and prints the node's descriptors and memory
per tunnel, then that the store counted every byte. With `--workers N` the node runs N
worker processes (SO_REUSEPORT) and descriptors and memory are summed over them, each
worker's own count shown too: a process's hard limit caps the tunnels one worker holds,
not the node. `soak`: mixed traffic (small and 1 MB GETs, 64 KiB uploads, tunnels with
echo, plus abusive clients: bad credentials, malformed heads, clients that vanish
mid-response) for SECONDS, sampling the node's RSS and descriptors; then compares the
usage the store recorded for the clean account with the bytes its clients moved.
Everything runs on 127.0.0.0/8. tests/hardening/test_load.py runs both, smaller.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from bench.local import free_port

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store

PASSWORD = "pw"
BLOCK = b"x" * (1 << 20)


# ---- the node under test ------------------------------------------------------------------




@dataclass
class Node:
    """`meshproxy proxy` as a child process on its own SQLite file (with workers: the
    supervisor, whose children serve; figures are summed over all of them)."""

    process: subprocess.Popen[bytes]
    port: int
    store: Store
    log: Path
    config: Path

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the node's pid); none without --workers."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        with contextlib.suppress(OSError):
            return [int(child) for child in children.read_text().split()]
        return []

    def pids(self) -> list[int]:
        return [self.process.pid, *self.worker_pids()]

    def proc_status(self, name: str, pid: int | None = None) -> int:
        """A figure from /proc/<pid>/status (kB for the Vm* fields)."""
        for line in Path(f"/proc/{pid or self.process.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        raise KeyError(name)

    def rss_kib(self) -> int:
        return sum(self.proc_status("VmRSS", pid) for pid in self.pids())

    def fds(self) -> int:
        return sum(self.fds_by_process())

    def fds_by_process(self) -> list[int]:
        """Descriptors of the node's pid, then of each worker."""
        counts = []
        for pid in self.pids():
            with contextlib.suppress(FileNotFoundError):  # a worker that just exited
                counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        return counts

    def fd_soft_limit(self) -> int:
        pid = (self.worker_pids() or [self.process.pid])[0]  # the limit a worker serves with
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise KeyError("Max open files")

    def usage(self, username: str = "alice") -> int:
        record = self.store.accounts.get(username)
        assert record is not None
        return self.store.usage.of(record, dt.datetime.now(dt.UTC))[1]

    def stop(self, signum: int = 15, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)


def seed_store(url: str) -> Store:
    store = Store.open(url)
    for username in ("alice", "bob"):
        if store.accounts.get(username) is None:
            store.accounts.create(username, password_hash=hash_password(PASSWORD),
                                 proxies=["edge"], billing_day=1)
    return store


def write_config(path: Path, database_url: str, data_dir: Path, port: int,
                 behaviour: dict[str, Any]) -> None:
    lines = [
        f'database_url = "{database_url}"',
        f'data_dir = "{data_dir}"',
        'plans = [{ name = "default", default_proxies = ["edge"] }]',
        "[ban]",
        "max_failures = 1000000",  # abusive clients here must not ban the load's addresses
        "[proxy]",
        'allow_destinations = ["127.0.0.0/8", "::1/128"]',
        *(f"{key} = {json.dumps(value)}" for key, value in behaviour.items()),
        "[[proxies]]",
        f'name = "edge"\nport = {port}',
        'egress = [{ address = "127.0.0.7" }, { address = "127.0.0.8" }]',
    ]
    path.write_text("\n".join(lines) + "\n")


def start_node(workdir: Path, *, fd_soft_limit: int | None = None,
               fd_hard_limit: int | None = None, port: int | None = None,
               workers: int = 1, **behaviour: Any) -> Node:
    """A node on `workdir`/node.sqlite3 (accounts alice and bob, password pw)."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'node.sqlite3'}"
    store = seed_store(url)
    port = port or free_port()
    config = workdir / "node.toml"
    write_config(config, url, workdir / "data", port, behaviour)
    return launch(config, port, store, workdir / "node.log", fd_soft_limit, fd_hard_limit,
                  workers)


def launch(config: Path, port: int, store: Store, log: Path,
           fd_soft_limit: int | None = None, fd_hard_limit: int | None = None,
           workers: int = 1) -> Node:
    def limit() -> None:
        hard = fd_hard_limit or _hard_limit()
        if fd_soft_limit is not None:  # a low soft limit: the node must raise its own
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(fd_soft_limit, hard), hard))
        elif fd_hard_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    offset = log.stat().st_size if log.exists() else 0  # a restart appends to the same log
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshproxy", "proxy", "--config", str(config),
             *(["--workers", str(workers)] if workers > 1 else [])],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    marker = f"listening on 127.0.0.1:{port}"
    node = Node(process, port, store, log, config)
    # The first worker prints the marker; the others must be forked too before counting.
    while (marker not in log.read_text()[offset:]
           or len(node.worker_pids()) < (workers if workers > 1 else 0)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the node did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return node


HARD_WANTED = 65_536  # 10,000 tunnels: two descriptors each on the node, and as many here


def _hard_limit() -> int:
    """The hard limit, raised to HARD_WANTED where allowed (root, or a high enough cap)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < HARD_WANTED:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, HARD_WANTED), HARD_WANTED))
            hard = HARD_WANTED
    return int(hard)


def raise_own_fd_limit() -> int:
    """This process holds the client and origin ends of every tunnel: lift its limits."""
    hard = _hard_limit()
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---- origins: an echo port and a tiny HTTP server, on their own loop thread -------------


class Origins:
    """`echo` (tunnels) and `http` (GET /bytes/N, POST anything -> its size; keep-alive)."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.echo, self.http = self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> tuple[int, int]:
        echo = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=4096)
        http = await asyncio.start_server(_http, "127.0.0.1", 0, backlog=4096)
        self._servers = [echo, http]
        return echo.sockets[0].getsockname()[1], http.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()

        with contextlib.suppress(Exception):
            self.run(stop(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError,
                             asyncio.LimitOverrunError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path = head.split(b" ", 2)[:2]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            if method == b"GET" and path.startswith(b"/bytes/"):
                size = int(path[7:])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                while size > 0:
                    piece = BLOCK[: min(size, len(BLOCK))]
                    writer.write(piece)
                    size -= len(piece)
                    await writer.drain()
            else:
                reply = b"%d" % length
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(reply), reply))
                await writer.drain()
    writer.close()


class OriginsProcess:
    """The same origins in a child process (`python -m bench.hardening origins`)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hardening", "origins"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
        )
        assert self.process.stdout is not None
        self.echo, self.http = json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


AnyOrigins = Origins | OriginsProcess


# ---- clients ------------------------------------------------------------------------------


def credentials(user: str = "alice", password: str = PASSWORD) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode())
    return b"Proxy-Authorization: Basic " + token + b"\r\n"


@dataclass
class Counter:
    """Bytes the clean account's clients moved (sent + received), and what they did."""

    moved: int = 0
    requests: int = 0
    tunnels: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(status, bytes read, body) of one Content-Length response."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    return int(head.split()[1]), len(head) + length, body


async def open_tunnel(address: tuple[str, int], port: int, counter: Counter,
                      local: str | None = None
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        *address, local_addr=(local, 0) if local else None)
    request = b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (port, credentials())
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise RuntimeError(f"tunnel refused: {head[:80]!r}")
    counter.moved += len(request) + len(head)
    counter.tunnels += 1
    return reader, writer


async def echo_through(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       payload: bytes, counter: Counter) -> None:
    writer.write(payload)
    assert await reader.readexactly(len(payload)) == payload
    counter.moved += 2 * len(payload)


# ---- tunnels ------------------------------------------------------------------------------


async def hold_tunnels(node: Node, origins: AnyOrigins, count: int, *,
                       parallel: int = 256, probe: int | None = None) -> dict[str, Any]:
    """Open `count` tunnels at once, prove the first `probe` (default: all) carry bytes,
    hold them, close them. (A spliced tunnel that has carried bytes keeps two pipes, four
    more descriptors, until it closes: probing fewer lets more tunnels fit a limit.)"""
    probe = count if probe is None else probe
    counter = Counter()
    limit = asyncio.Semaphore(parallel)
    rss_before, fds_before = node.rss_kib(), node.fds()

    async def one(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with limit:
            # Spread the client ends over source addresses: 64k ports per pair at most.
            local = f"127.5.{index // 250 % 250}.{index % 250 + 1}"
            pair = await open_tunnel(node.address, origins.echo, counter, local)
            if index < probe:
                await echo_through(*pair, b"ping %d\n" % index, counter)
            return pair

    started = time.monotonic()
    tunnels = await asyncio.gather(*(one(i) for i in range(count)))
    opened = time.monotonic() - started
    await asyncio.sleep(1.0)
    held_fds, held_rss = node.fds_by_process(), node.rss_kib()
    # Every tunnel still carries bytes after all the others were opened.
    await asyncio.gather(*(echo_through(r, w, b"again\n", counter) for r, w in tunnels[:probe]))
    for _, writer in tunnels:
        writer.close()
    for _ in range(200):
        if node.fds() <= fds_before + 2:
            break
        await asyncio.sleep(0.05)
    return {
        "tunnels": count,
        "tunnels_carrying_bytes": probe,
        "open_seconds": round(opened, 2),
        "node_fd_soft_limit": node.fd_soft_limit(),
        "node_fds_before": fds_before,
        "node_fds_held": sum(held_fds),
        **({"node_fds_held_by_process": held_fds} if len(held_fds) > 1 else {}),
        "node_fds_after": node.fds(),
        "rss_kib_before": rss_before,
        "rss_kib_held": held_rss,
        "kib_per_tunnel": round((held_rss - rss_before) / count, 2),
        "bytes_moved": counter.moved,
    }


# ---- soak ---------------------------------------------------------------------------------


async def _clean_worker(node: Node, origins: AnyOrigins, counter: Counter, until: float,
                        rng: random.Random) -> None:
    """The clean account: every byte it moves must be in the store afterwards."""
    reader, writer = await asyncio.open_connection(*node.address)
    try:
        while time.monotonic() < until:
            kind = rng.random()
            if kind < 0.15:
                pair = await open_tunnel(node.address, origins.echo, counter)
                await echo_through(*pair, BLOCK[: 16 * 1024], counter)
                pair[1].close()
                continue
            if kind < 0.5:
                target = b"/bytes/1024"
            elif kind < 0.6:
                target = b"/bytes/1000000"
            else:
                target = b"/upload"
            if target == b"/upload":
                body = BLOCK[: 64 * 1024]
                request = (b"POST http://127.0.0.1:%d/upload HTTP/1.1\r\nHost: x\r\n%s"
                           b"Content-Length: %d\r\n\r\n" % (origins.http, credentials(),
                                                            len(body))) + body
            else:
                request = (b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\n%s\r\n"
                           % (origins.http, target, credentials()))
            writer.write(request)
            status, received, _ = await read_response(reader)
            if status != 200:
                counter.errors.append(f"clean request answered {status}")
            counter.moved += len(request) + received
            counter.requests += 1
    finally:
        writer.close()


async def _abusive_worker(node: Node, origins: AnyOrigins, counter: Counter, until: float,
                          rng: random.Random, source: str) -> None:
    """Bad credentials, garbage, and a second account's clients that vanish mid-response."""
    while time.monotonic() < until:
        kind = rng.random()
        reader, writer = await asyncio.open_connection(*node.address, local_addr=(source, 0))
        try:
            if kind < 0.3:
                writer.write(b"GET http://127.0.0.1:%d/bytes/10 HTTP/1.1\r\nHost: x\r\n%s\r\n"
                             % (origins.http, credentials("alice", "wrong")))
            elif kind < 0.6:
                writer.write(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nContent-Length: 1\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" % origins.http)
            else:
                writer.write(b"GET http://127.0.0.1:%d/bytes/5000000 HTTP/1.1\r\nHost: x\r\n"
                             b"%s\r\n" % (origins.http, credentials("bob")))
                await reader.read(100_000)  # then vanish with the rest unread
                writer.transport.abort()
                continue
            data = await reader.read(4096)
            if data.startswith(b"HTTP/1.1 4"):
                counter.refused += 1
            else:
                counter.errors.append(f"abuse answered {data[:40]!r}")
        except ConnectionError:
            pass
        finally:
            writer.close()


async def soak(node: Node, origins: AnyOrigins, seconds: float, *, concurrency: int = 32,
               sample_every: float = 2.0, on_sample: Callable[[dict[str, Any]], None] | None
               = None) -> dict[str, Any]:
    counter, abuse = Counter(), Counter()
    rng = random.Random(7)
    until = time.monotonic() + seconds
    samples: list[dict[str, Any]] = []
    started = time.monotonic()

    async def sampler() -> None:
        while time.monotonic() < until:
            sample = {"t": round(time.monotonic() - started, 1), "rss_kib": node.rss_kib(),
                      "fds": node.fds(), "requests": counter.requests}
            samples.append(sample)
            if on_sample:
                on_sample(sample)
            await asyncio.sleep(sample_every)

    fds_before = node.fds()
    clean = [_clean_worker(node, origins, counter, until, random.Random(rng.random()))
             for _ in range(concurrency)]
    abusive = [_abusive_worker(node, origins, abuse, until, random.Random(rng.random()),
                               f"127.6.0.{i + 1}") for i in range(max(1, concurrency // 8))]
    await asyncio.gather(sampler(), *clean, *abusive)
    for _ in range(100):  # let the node close what the clients left
        if node.fds() <= fds_before + 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)  # more than one flush interval
    warm = samples[len(samples) // 5] if samples else {"rss_kib": node.rss_kib()}
    return {
        "seconds": seconds,
        "requests": counter.requests,
        "tunnels": counter.tunnels,
        "abusive_refused": abuse.refused,
        "errors": counter.errors[:5] + abuse.errors[:5],
        "bytes_moved": counter.moved,
        "bytes_recorded": node.usage("alice"),
        "rss_kib_warm": warm["rss_kib"],
        "rss_kib_max_after_warm": max(s["rss_kib"] for s in samples[len(samples) // 5:]),
        "rss_kib_end": node.rss_kib(),
        "fds_before": fds_before,
        "fds_max": max(s["fds"] for s in samples),
        "fds_after": node.fds(),
        "samples": samples,
    }


# ---- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening")
    sub = parser.add_subparsers(dest="what", required=True)
    tunnels = sub.add_parser("tunnels", help="hold COUNT concurrent tunnels on one node")
    tunnels.add_argument("--count", type=int, default=10_000)
    tunnels.add_argument("--probe", type=int, default=None,
                         help="how many of them carry bytes (default: all)")
    tunnels.add_argument("--workers", type=int, default=1,
                         help="worker processes on the node (SO_REUSEPORT)")
    soaking = sub.add_parser("soak", help="mixed traffic for SECONDS, memory and fds watched")
    soaking.add_argument("--seconds", type=float, default=600)
    soaking.add_argument("--concurrency", type=int, default=64)
    sub.add_parser("origins", help="(internal) serve the origins in this process")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    import tempfile

    raise_own_fd_limit()
    if args.what == "origins":
        serving = Origins()
        print(json.dumps([serving.echo, serving.http]), flush=True)
        sys.stdin.read()  # until the parent goes away
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="meshproxy-hardening-"))
    origins = OriginsProcess()  # their descriptors count against another process's limit
    node = start_node(workdir, fd_soft_limit=1024, flush_interval=1.0,
                      workers=getattr(args, "workers", 1))
    try:
        if args.what == "tunnels":
            result = uvloop.run(hold_tunnels(node, origins, args.count, probe=args.probe))
            result["node_workers"] = len(node.worker_pids())
            for _ in range(100):  # usage is flushed every second, by each worker
                if node.usage() == result["bytes_moved"]:
                    break
                time.sleep(0.1)
            result["bytes_recorded"] = node.usage()
        else:
            result = uvloop.run(soak(node, origins, args.seconds,
                                     concurrency=args.concurrency, sample_every=10.0,
                                     on_sample=lambda s: print(json.dumps(s), flush=True)))
            result["exit_code_on_sigterm"] = node.stop()
            result["bytes_lost"] = result["bytes_moved"] - node.usage("alice")
            result.pop("samples")
    finally:
        if node.process.poll() is None:
            node.process.kill()
        origins.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
