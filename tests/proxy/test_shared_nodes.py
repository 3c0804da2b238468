"""Two proxy nodes sharing PostgreSQL and Redis: usage summed exactly, limits enforced
across nodes, bans and changes announced to every node within a second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import requests

from meshproxy.config import Settings
from meshproxy.domain.passwords import hash_password
from meshproxy.domain.units import GB
from meshproxy.fleet import open_store
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store
from support.polling import wait_until

from .clients import basic, connect, is_closed, read_reply
from .conftest import LoopThread, Origins, proxy_settings
from .test_metering import curl_bytes

SLOW_POLL = 30.0  # the change feed is polled rarely: only the notification can be in time


@pytest.fixture
def cluster(
    make_settings: Callable[..., Settings],
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    proxy_thread: LoopThread,
) -> Iterator[tuple[Store, list[ProxyNode]]]:
    def settings(**proxy: Any) -> Settings:
        base = proxy_settings(make_settings, sync_interval=SLOW_POLL, **proxy)
        return base.model_copy(
            update={
                "database_url": postgres_url,
                "redis_url": redis_url,
                "shared": base.shared.model_copy(update={"prefix": redis_prefix}),
            }
        )

    store = open_store(settings())
    assert store.bans.shared is not None  # the ban in Redis
    parent = store.accounts.create("alice", password_hash=hash_password("pw"), billing_day=1,
                                  plan="default", proxies=["open", "world"])
    store.accounts.create("sub", parent_id=parent.id, password_hash=hash_password("pw"))
    nodes = [ProxyNode(settings(), store) for _ in range(2)]
    for node in nodes:
        proxy_thread.run(node.start())
    yield store, nodes
    for node in nodes:
        proxy_thread.run(node.stop(1.0))
    store.close()


def fold(store: Store, redis_url: str, prefix: str) -> None:
    UsageFolder(redis.Redis.from_url(redis_url), UsageKeys(prefix), store.folds).fold()


def proxy(node: ProxyNode, user: str = "sub", password: str = "pw") -> dict[str, str]:
    host, port = node.addresses["open"]
    return {"http": f"http://{user}:{password}@{host}:{port}"}


def test_usage_through_both_nodes_is_summed_exactly_after_the_fold(
    cluster: tuple[Store, list[ProxyNode]], origins: Origins, proxy_thread: LoopThread,
    redis_url: str, redis_prefix: str,
) -> None:
    store, nodes = cluster
    moved = 0
    for node in nodes * 2:
        host, port = node.addresses["open"]
        moved += curl_bytes("-x", f"http://sub:pw@{host}:{port}", origins.url("/bytes/1000000"))
    for node in nodes:
        proxy_thread.run(node.meter.flush())
    fold(store, redis_url, redis_prefix)
    now = datetime.now(UTC)
    for name in ("sub", "alice"):
        record = store.accounts.get(name)
        assert record is not None
        assert store.usage.of(record, now) == (moved, moved)


def test_a_limit_is_enforced_across_nodes(
    cluster: tuple[Store, list[ProxyNode]], origins: Origins, proxy_thread: LoopThread
) -> None:
    store, (first, second) = cluster
    store.accounts.update("sub", monthly_limit_gb=1)
    url = origins.url("/echo")
    wait_until(lambda: second.directory.by_username["sub"].limits.monthly_gb == 1, 1.0)
    with connect(second.addresses["open"]) as sock:  # a keep-alive connection on the second
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: "
                     f"{basic('sub')}\r\n\r\n".encode())
        assert read_reply(sock).status == 200
        # A GB through the first node only: the second learns of it from Redis, closes
        # its connection within the quota check, and refuses new requests.
        sub = first.directory.by_username["sub"]
        first.meter.add(sub.id, sub.parent_id, GB)
        proxy_thread.run(first.meter.flush())
        assert is_closed(sock, timeout=3.0)
    assert second.directory.by_username["sub"].monthly_bytes > GB
    assert requests.get(url, proxies=proxy(second), timeout=10).status_code == 509


def test_deactivation_and_a_ban_reach_every_node_within_a_second(
    cluster: tuple[Store, list[ProxyNode]], origins: Origins
) -> None:
    store, nodes = cluster
    url = origins.url("/echo")
    for node in nodes:
        assert requests.get(url, proxies=proxy(node), timeout=10).status_code == 200
    store.accounts.update("sub", active=False)
    deactivated = wait_until(lambda: all(not n.directory.by_username["sub"].active for n in nodes))
    assert deactivated < 1.0
    for node in nodes:
        assert requests.get(url, proxies=proxy(node), timeout=10).status_code == 402
    # Four bad passwords at the first node ban the client IP on the second too.
    for _ in range(4):
        response = requests.get(url, proxies=proxy(nodes[0], password="bad"), timeout=10)
        assert response.status_code == 407
    assert wait_until(lambda: nodes[1].directory.bans.is_banned("127.0.0.1", time.time())) < 1.0
    refused = requests.get(url, proxies=proxy(nodes[1], user="alice"), timeout=10)
    assert refused.status_code == 407
    assert store.bans.unban("127.0.0.1")
