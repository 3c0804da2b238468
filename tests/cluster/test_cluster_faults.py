"""The local cluster (1 API node, 3 proxy nodes: real processes) on a Redis and a
PostgreSQL of the test's own, killed and stopped under load: clients keep being served,
and once both are back every byte the clients moved is in the store, exactly once.

Redis gets SIGKILL and comes back EMPTY (no snapshot, no append-only file): the flushes it
held unfolded are written to the store from the proxy nodes' journals. PostgreSQL is
stopped in `immediate` mode (a crash: no checkpoint) and started again: folds wait, usage
waits in Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from bench.cluster import PARENT, PARENT_PASSWORD, Cluster
from bench.private import PrivatePostgres, PrivateRedis

from cluster.conftest import SUB, SUB_PASSWORD, fetch, settled
from meshproxy.config import load_settings
from meshproxy.fleet import open_store
from support.polling import wait_until

pytestmark = pytest.mark.slow  # soak, cluster or SIGKILL: `make test-fast` leaves it out


@dataclass
class Servers:
    redis: PrivateRedis
    postgres: PrivatePostgres


@pytest.fixture(scope="module")
def servers(missing_service: Callable[[str, Exception], None]) -> Iterator[Servers]:
    try:
        made = Servers(PrivateRedis(), PrivatePostgres())
        made.redis.start()
        made.postgres.start()
    except Exception as error:  # redis-server or the PostgreSQL binaries missing
        missing_service("redis-server and PostgreSQL's initdb/pg_ctl", error)
    yield made
    made.redis.close()
    made.postgres.close()


@pytest.fixture(scope="module")
def cluster(servers: Servers) -> Iterator[Cluster]:
    running = Cluster(apis=1, proxies=3, postgres=servers.postgres.url,
                      redis_url=servers.redis.url)
    running.start()
    yield running
    running.stop()


def every_node(cluster: Cluster, backend: str, *, up: bool) -> bool:
    """Every proxy node's metrics say `backend` answered (or failed) last time."""
    line = f'meshproxy_backend_up{{backend="{backend}"}} {1.0 if up else 0.0}'
    for node in cluster.proxy_nodes:
        try:
            text = httpx.get(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return False
        if line not in text.splitlines():
            return False
    return True


def test_redis_killed_and_postgres_crashed_under_load_lose_no_byte(
    cluster: Cluster, servers: Servers, origin: int
) -> None:
    with httpx.Client(base_url=cluster.api_url(), auth=(PARENT, PARENT_PASSWORD)) as api:
        created = api.post("/api/sub/create/", data={"username": SUB, "password": SUB_PASSWORD})
        assert created.status_code == 200, created.text
    cluster.wait_for_accounts(2)  # the parent and the sub-account, on every proxy node
    moved = [0, 0, 0]
    started = time.monotonic()
    failures: list[str] = []
    done = threading.Event()

    def drive(index: int) -> None:
        deadline = time.monotonic() + 30
        for _ in range(2_000):
            if done.is_set() or time.monotonic() > deadline:
                return
            try:
                status, nbytes = fetch(cluster.proxy_address(index), origin)
            except OSError as error:
                failures.append(f"node {index}: {error!r}")
                return
            if status != 200:
                failures.append(f"node {index}: {status} at {time.monotonic() - started:.2f} s")
                return
            moved[index] += nbytes

    clients = [threading.Thread(target=drive, args=(i,)) for i in range(3)]
    for client in clients:
        client.start()
    # Each fault lasts until every proxy node has seen it, and each recovery until every
    # node has seen that, all under the clients' traffic.
    wait_until(lambda: all(moved), 10, "no traffic through every node")
    servers.redis.kill()
    wait_until(lambda: every_node(cluster, "Redis (usage counters)", up=False), 15)
    servers.redis.start()  # empty
    wait_until(lambda: every_node(cluster, "Redis (usage counters)", up=True), 15)
    servers.postgres.stop("immediate")
    wait_until(lambda: every_node(cluster, "the store (account changes)", up=False), 15)
    servers.postgres.start()
    wait_until(lambda: every_node(cluster, "the store (account changes)", up=True), 15)
    done.set()
    for client in clients:
        client.join(35)
    assert not failures, failures
    assert all(m > 0 for m in moved), moved

    store = open_store(load_settings(cluster.nodes[0].config), migrate=False)
    try:
        settled(store, SUB, sum(moved), seconds=30)
        settled(store, PARENT, sum(moved))
    finally:
        store.close()
