"""A proxy node whose Redis dies (SIGKILL, under traffic) and comes back empty, like a
restarted cache: the node keeps serving, says so in /readyz and /metrics, keeps the usage
it could not send, and once Redis answers every byte moved reaches the store exactly once.
Also: Redis down when the node starts.

Each test runs its own redis-server on a free loopback port (never the shared one), with
no snapshot and no append-only file. Flushes are driven by the test (a flush interval
longer than the test), so what Redis holds when it dies is known: flushes it applied and
nobody folded, which the node writes to the store itself once it finds Redis empty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import cast

import httpx
import pytest
import redis
from bench.private import PrivateRedis

from meshproxy.config import Settings
from meshproxy.domain.passwords import hash_password
from meshproxy.fleet import open_store
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.server.node import ProxyNode
from proxy.clients import curl
from support.polling import wait_until
from support.proxy_env import (  # the data-plane fixtures: real origins, the node's loop thread
    LoopThread,
    Origins,
    origin_thread,
    origins,
    proxy_settings,
    proxy_thread,
)

__all__ = ["origin_thread", "origins", "proxy_thread"]

PREFIX = "outage:"
NEVER = 60.0  # the longest flush interval allowed, longer than the test: it flushes itself
USAGE_BACKEND = "Redis (usage counters)"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.close()


class Node:
    """A ProxyNode on PostgreSQL and the private Redis, with its admin listener."""

    def __init__(self, settings: Settings, thread: LoopThread, origins: Origins) -> None:
        self.store = open_store(settings)
        assert self.store.bans.shared is not None  # the ban in Redis
        self.store.accounts.create("alice", password_hash=hash_password("pw"), billing_day=1,
                                  plan="default", proxies=["open"])
        self.redis_url = str(settings.redis_url)
        self.thread = thread
        self.origins = origins
        self.node = ProxyNode(settings, self.store)
        self.admin: AdminServer | None = None

    def start(self) -> None:
        self.thread.run(self.node.start())

        async def start_admin() -> AdminServer:
            status = NodeStatus(store=self.store, api=False, proxy_node=self.node)
            server = AdminServer(status, "127.0.0.1", 0)
            await server.start()
            return server

        self.admin = self.thread.run(start_admin())
        self.admin_url = f"http://127.0.0.1:{self.admin.port}"

    def get(self, nbytes: int) -> int:
        """One GET of `nbytes` through the node; every byte curl moved (it must be a 200)."""
        host, port = self.node.addresses["open"]
        result = curl("-o", "/dev/null", "-w",
                      "%{http_code} %{size_request} %{size_upload} %{size_header} "
                      "%{size_download}", "-x", f"http://alice:pw@{host}:{port}",
                      self.origins.url(f"/bytes/{nbytes}"))
        assert result.returncode == 0, result.stderr
        status, *sizes = result.stdout.split()
        assert status == b"200", status
        return sum(int(n) for n in sizes)

    def flush(self) -> None:
        self.thread.run(self.node.meter.flush())

    def fold(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            UsageFolder(client, UsageKeys(PREFIX), self.store.folds).fold()
        finally:
            client.close()

    def recorded(self) -> tuple[int, int]:
        record = self.store.accounts.get("alice")
        assert record is not None
        return self.store.usage.of(record, datetime.now(UTC))

    def wait_for_live_usage(self, nbytes: int, seconds: float = 5.0) -> None:
        """The node's own figure for alice (what its limits are checked against)."""
        def alice() -> tuple[int, int]:
            state = self.node.directory.by_username["alice"]
            return state.total_bytes, state.monthly_bytes

        wait_until(lambda: alice() == (nbytes, nbytes), seconds, lambda: (alice(), nbytes), 0.05)

    def readyz(self) -> tuple[int, dict[str, object]]:
        reply = httpx.get(f"{self.admin_url}/readyz")
        return reply.status_code, reply.json()

    def wait_until_not_degraded(self, seconds: float = 5.0) -> None:
        body: dict[str, object] = {}

        def ready() -> bool:
            nonlocal body
            status, body = self.readyz()
            assert status == 200
            return body["degraded"] is False

        def down() -> object:
            backends = cast(dict[str, dict[str, object]], body["backends"])
            return {k: v for k, v in backends.items() if not v["up"]}

        wait_until(ready, seconds, down, 0.1)

    def metrics(self) -> str:
        return httpx.get(f"{self.admin_url}/metrics").text

    def stop(self) -> None:
        if self.admin is not None:
            self.thread.run(self.admin.stop())
        self.thread.run(self.node.stop(1.0))
        self.store.close()


@pytest.fixture
def start_node(
    make_settings: Callable[..., Settings], postgres_url: str, private_redis: PrivateRedis,
    proxy_thread: LoopThread, origins: Origins,
) -> Iterator[Callable[[], Node]]:
    started: list[Node] = []

    def start() -> Node:
        base = proxy_settings(make_settings, flush_interval=NEVER)
        settings = base.model_copy(update={
            "database_url": postgres_url,
            "redis_url": private_redis.url,
            "shared": base.shared.model_copy(update={"prefix": PREFIX}),
        })
        node = Node(settings, proxy_thread, origins)
        started.append(node)
        node.start()
        return node

    yield start
    for node in started:
        node.stop()


def metric(text: str, line_start: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    assert len(found) == 1, (line_start, text)
    return float(found[0].rsplit(" ", 1)[1])


def traffic_during(action: Callable[[], None], node: Node) -> int:
    """Clients keep fetching through the node while `action` runs, and for a moment after
    (bounded: 200 requests or 10 s); the bytes they moved, every reply a 200."""
    moved: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def drive() -> None:
        deadline = time.monotonic() + 10
        for _ in range(200):
            if done.is_set() or time.monotonic() > deadline:
                return
            try:
                moved.append(node.get(50_000))
            except BaseException as error:  # reported in the test's thread
                errors.append(error)
                return

    clients = [threading.Thread(target=drive) for _ in range(3)]
    for client in clients:
        client.start()
    wait_until(lambda: moved or errors, 10, "the clients did not get going")
    action()
    time.sleep(0.3)
    done.set()
    for client in clients:
        client.join(15)
    assert not errors, errors
    assert len(moved) >= 6, "the clients did not get going"
    return sum(moved)


@pytest.mark.slow
def test_redis_killed_under_traffic_and_restarted_empty_loses_nothing(
    start_node: Callable[[], Node], private_redis: PrivateRedis
) -> None:
    private_redis.start()
    node = start_node()
    moved = sum(node.get(200_000) for _ in range(3))
    node.flush()
    node.fold()
    assert node.recorded() == (moved, moved)
    node.wait_until_not_degraded()
    unfolded = node.get(300_000)
    node.flush()  # in Redis only: lost with it, but for the node's journal
    moved += unfolded
    assert node.recorded() == (moved - unfolded, moved - unfolded)
    assert metric(node.metrics(), "meshproxy_usage_unfolded_flushes") == 1  # its journal

    unsent = traffic_during(private_redis.kill, node)  # counted, not flushed yet
    with pytest.raises(redis.exceptions.ConnectionError):
        node.flush()
    unsent += node.get(100_000)  # still serving
    with pytest.raises(redis.exceptions.ConnectionError):
        node.flush()  # a second failed try keeps both the batch and what came after
    unsent += node.get(100_000)

    status, body = node.readyz()
    assert status == 200 and body["ready"] is True and body["degraded"] is True
    backends = body["backends"]
    assert isinstance(backends, dict) and backends[USAGE_BACKEND]["up"] is False
    text = node.metrics()
    assert metric(text, f'meshproxy_backend_up{{backend="{USAGE_BACKEND}"}}') == 0
    assert metric(text, "meshproxy_usage_unflushed_bytes") == unsent

    private_redis.start()  # the same port, nothing in it
    node.flush()  # the journal to the store; the held batch and the rest to Redis
    assert metric(node.metrics(), "meshproxy_usage_unflushed_bytes") == 0
    assert node.recorded() == (moved, moved)  # what Redis lost, from the journal
    assert metric(node.metrics(), "meshproxy_usage_unfolded_flushes") == 1  # the resend
    node.flush()  # nothing left to send, nothing sent twice
    node.fold()
    node.fold()
    moved += unsent
    assert node.recorded() == (moved, moved)
    node.wait_for_live_usage(moved)  # the directory reloaded in the new generation
    node.wait_until_not_degraded()  # the change listener reconnects within a second
    text = node.metrics()
    assert metric(text, f'meshproxy_backend_up{{backend="{USAGE_BACKEND}"}}') == 1


def test_a_node_started_while_redis_is_down_serves_and_keeps_its_usage(
    start_node: Callable[[], Node], private_redis: PrivateRedis
) -> None:
    node = start_node()  # accounts from PostgreSQL; Redis not there at all
    moved = sum(node.get(100_000) for _ in range(3))
    with pytest.raises(redis.exceptions.ConnectionError):
        node.flush()
    status, body = node.readyz()
    assert status == 200 and body["degraded"] is True
    assert metric(node.metrics(), "meshproxy_usage_unflushed_bytes") == moved

    private_redis.start()
    moved += node.get(100_000)
    node.flush()
    node.fold()
    assert node.recorded() == (moved, moved)
    node.wait_until_not_degraded()
    node.wait_for_live_usage(moved)
