"""Faults: origins that reset or stall mid-response, a full disk under the SQLite store,
the store unreachable at start, SIGTERM and kill -9 under load."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import uvloop
from bench.hardening import Node, credentials, launch
from bench.hardening import Origins as LoadOrigins

from meshproxy.config import Settings
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store
from support.polling import wait_until
from support.proxy_env import LoopThread, proxy_settings

from .conftest import Env
from .raw import open_from, settle

AUTH = credentials()


# ---- origins that fail mid-response ---------------------------------------------------------


class FailingOrigin:
    """Answers with a 1 MB Content-Length, sends 300 kB, then resets or stalls."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                if self.how == "reset-before-head":
                    self._reset(conn)
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
                             + b"r" * 300_000)
                if self.how == "reset":
                    time.sleep(0.2)
                    self._reset(conn)
                else:
                    self.held.append(conn)  # stall: never another byte

    @staticmethod
    def _reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


def raw_get(address: tuple[str, int], url: str, timeout: float = 10) -> tuple[int, int, bytes]:
    """(bytes sent, bytes received until the proxy closed, the first bytes received)."""
    request = f"GET {url} HTTP/1.1\r\nHost: x\r\n".encode() + AUTH + b"Connection: close\r\n\r\n"
    received = b""
    with open_from(address, timeout=timeout) as sock:
        sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while piece := sock.recv(65536):
                received += piece
    return len(request), len(received), received[:64]


@pytest.mark.parametrize("how", ["reset", "stall"])
def test_origin_failing_mid_response_closes_the_client_and_usage_is_counted(
    start_env: Callable[..., Env], how: str
) -> None:
    env = start_env(upstream_timeout=1.0, quota_check_interval=0.1)
    env.account("alice")
    env.sync()
    origin = FailingOrigin(how)
    try:
        started = time.monotonic()
        sent, received, first = raw_get(env.address(), f"http://127.0.0.1:{origin.port}/")
        assert first.startswith(b"HTTP/1.1 200 ")
        assert 300_000 < received < 1_000_000  # truncated: the client sees it end early
        assert time.monotonic() - started < 5
        settle(env)
        env.flush()
        counted = env.usage("alice")[1]
        assert sent + received <= counted <= sent + received + 256 * 1024  # + what was queued
    finally:
        origin.close()


def test_origin_reset_before_the_head_is_502(env: Env) -> None:
    origin = FailingOrigin("reset-before-head")
    try:
        _, _, first = raw_get(env.address(), f"http://127.0.0.1:{origin.port}/")
        assert first.startswith(b"HTTP/1.1 502 ")
        settle(env)
    finally:
        origin.close()


# ---- a full disk under the store --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (root only: mount(2)); skipped where it cannot be mounted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                            capture_output=True, check=False)
    if result.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
            os.fsync(out.fileno())
    return filler


def test_disk_full_proxy_keeps_serving_api_answers_503_and_no_usage_is_lost(
    small_disk: Path, make_settings: Callable[..., Settings], proxy_thread: LoopThread,
    start_server: Callable[..., object],
) -> None:
    from api.harness import Running  # the API test harness: uvicorn over TLS on loopback

    store = Store.open(f"sqlite:///{small_disk / 'store.sqlite3'}")
    parent = store.accounts.create("alice", password_hash=hash_password("pw"),
                                  proxies=["open", "world"], billing_day=1, plan="default")
    node = ProxyNode(proxy_settings(make_settings, flush_interval=0.2), store)
    proxy_thread.run(node.start())
    api = start_server(store=store)
    assert isinstance(api, Running)
    origin = LoadOrigins()
    try:
        address = node.addresses["open"]
        url = f"http://127.0.0.1:{origin.http}/bytes/20000"
        moved = sum(sum(raw_get(address, url)[:2]) for _ in range(3))
        wait_until(lambda: store.usage.of(parent, _now())[1] == moved, 3)
        filler = fill(small_disk)
        for _ in range(10):  # the proxy serves from memory and keeps the bytes
            sent, received, first = raw_get(address, url)
            assert first.startswith(b"HTTP/1.1 200 ")
            moved += sent + received
        failed = node.meter.health.errors
        # a flush of these bytes failing too (every 0.2 s, each failure counted)
        wait_until(lambda: node.meter.health.errors > failed, 3, "no flush failed")
        assert store.usage.of(parent, _now())[1] < moved
        client = api.client(auth=("alice", "pw"))
        refused = client.post("/api/sub/create/", data={"username": "pm_diskfull"})
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert "Traceback" not in refused.text
        filler.unlink()
        wait_until(lambda: store.usage.of(parent, _now())[1] == moved, 5, "usage lost")
        assert client.post("/api/sub/create/",
                           data={"username": "pm_diskfull"}).status_code == 200
    finally:
        origin.close()
        proxy_thread.run(node.stop(1.0))
        store.close()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_store_unreachable_at_start_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('database_url = "postgresql://nobody@127.0.0.1:1/none"\n'
                      f'data_dir = "{tmp_path}"\n')
    result = subprocess.run([sys.executable, "-m", "meshproxy", "proxy", "--config", str(config)],
                            capture_output=True, timeout=60, check=False)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    assert "unreachable" in output and "Traceback" not in output


# ---- signals under load -----------------------------------------------------------------------


@dataclass
class Load:
    """Clients doing 64 kB GETs in a loop on keep-alive connections until refused."""

    completed: int = 0  # bytes of exchanges that finished
    attempted: int = 0  # plus the bytes of exchanges cut off
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (time, completed)

    async def worker(self, node: Node, origin_port: int, until: float) -> None:
        request = (b"GET http://127.0.0.1:%d/bytes/65536 HTTP/1.1\r\nHost: x\r\n%s\r\n"
                   % (origin_port, AUTH))
        reader, writer = await asyncio.open_connection(*node.address)
        try:
            while time.monotonic() < until:
                writer.write(request)
                self.attempted += len(request)
                got = 0
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    got = len(head)
                    body = await reader.readexactly(65536)
                    got += len(body)
                except (asyncio.IncompleteReadError, ConnectionError) as error:
                    if isinstance(error, asyncio.IncompleteReadError):
                        got += len(error.partial)
                    self.attempted += got
                    return
                self.attempted += got
                self.completed += len(request) + got
                self.timeline.append((time.monotonic(), self.completed))
        finally:
            writer.close()

    def run(self, node: Node, origin_port: int, seconds: float, action: Callable[[], None],
            at: float, workers: int = 8) -> float:
        async def main() -> float:
            until = time.monotonic() + seconds
            loop = asyncio.get_running_loop()
            when: list[float] = []

            def act() -> None:
                when.append(time.monotonic())
                action()

            loop.call_later(at, act)
            await asyncio.gather(*(self.worker(node, origin_port, until) for _ in range(workers)))
            return when[0]

        return uvloop.run(main())


def test_sigterm_under_load_drains_flushes_and_exits_0(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    node = node_process(flush_interval=5.0)  # only the stop's flush can save the last bytes
    load = Load()
    load.run(node, load_origins.http, 6, lambda: node.process.send_signal(signal.SIGTERM), 2.0)
    assert node.process.wait(15) == 0
    assert load.completed > 1_000_000
    recorded = node.usage()
    assert load.completed <= recorded <= load.attempted  # nothing lost, nothing invented


@pytest.mark.slow
def test_kill_9_under_load_loses_at_most_one_flush_interval_and_restarts_clean(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    interval = 1.0
    node = node_process(flush_interval=interval)
    load = Load()
    killed_at = load.run(node, load_origins.http, 5, lambda: node.process.send_signal(
        signal.SIGKILL), 3.0)
    assert node.process.wait(10) == -signal.SIGKILL
    recorded = node.usage()
    assert recorded <= load.attempted
    # What finished within the last flush interval (plus the flush's own time) may be lost.
    at_risk_from = killed_at - interval - 0.5
    safe = max((done for at, done in load.timeline if at < at_risk_from), default=0)
    assert recorded >= safe, (recorded, safe, load.completed)
    lost = load.completed - recorded
    with sqlite3.connect(str(node.config.parent / "node.sqlite3")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # A clean restart on the same store and port; usage goes on from what was recorded.
    restarted = launch(node.config, node.port, node.store, node.log)
    try:
        response = requests.get(f"http://127.0.0.1:{load_origins.http}/bytes/10",
                                proxies={"http": f"http://alice:pw@127.0.0.1:{node.port}"},
                                timeout=10)
        assert response.status_code == 200
        assert restarted.stop() == 0
        assert node.usage() > recorded
    finally:
        if restarted.process.poll() is None:
            restarted.process.kill()
    print(f"kill -9: completed {load.completed} B, recorded {recorded} B, lost {lost} B")
