"""The local cluster (bench/cluster.py): 2 API nodes and 3 proxy nodes as real processes
over the local PostgreSQL and Redis, driven for one sub-account through every proxy node;
and the same tests side by side on a single `meshproxy serve` node (the tests' "node 0,
1, 2" are then all that one node).

Checks: usage summed exactly across nodes; a monthly limit enforced globally (overshoot
bounded by what the nodes move in one flush interval + 2 s); a deactivation through one
API node honoured by every proxy node within 1 s; a ban from failures on one proxy node
honoured by the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from bench.cluster import PARENT, PARENT_PASSWORD, Cluster

from cluster.conftest import SUB, SUB_PASSWORD, fetch, settled, usage
from meshproxy.config import load_settings
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.units import GB
from meshproxy.fleet import open_store
from meshproxy.store import Store
from support.polling import wait_until

pytestmark = pytest.mark.slow  # soak, cluster or SIGKILL: `make test-fast` leaves it out

SHAPES: dict[str, dict[str, Any]] = {
    "2 API + 3 proxy nodes": {},
    "one serve node": {"apis": 0, "proxies": 0, "serving": 1},
}


@pytest.fixture(scope="module", params=list(SHAPES))
def cluster(
    request: pytest.FixtureRequest, missing_service: Callable[[str, Exception], None]
) -> Iterator[Cluster]:
    running = Cluster(**SHAPES[request.param])
    try:
        running.start()
    except Exception as error:  # PostgreSQL or Redis missing
        missing_service("the cluster's PostgreSQL and Redis", error)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def store(cluster: Cluster) -> Iterator[Store]:
    opened = open_store(load_settings(cluster.nodes[0].config), migrate=False)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[list[httpx.Client]]:
    clients = [httpx.Client(base_url=cluster.api_url(i), auth=(PARENT, PARENT_PASSWORD),
                            timeout=10) for i in range(2)]
    created = clients[0].post("/api/sub/create/",
                              data={"username": SUB, "password": SUB_PASSWORD})
    assert created.status_code == 200, created.text
    cluster.wait_for_accounts(2)  # the parent and the sub-account, on every proxy node
    yield clients
    for client in clients:
        client.close()


def test_usage_through_every_proxy_node_is_summed_exactly(
    cluster: Cluster, api: list[httpx.Client], store: Store, origin: int
) -> None:
    moved = 0
    for round_ in range(3):
        for index in range(3):
            status, nbytes = fetch(cluster.proxy_address(index), origin)
            assert status == 200, (round_, index)
            moved += nbytes
    settled(store, SUB, moved)
    assert usage(store, PARENT)[1] == moved
    listed = api[1].get("/api/sub/get/", params={"username": SUB}).json()
    assert abs(listed["total_bandwidth"] - moved / 1e9) < 1e-6


def test_a_limit_is_enforced_across_all_proxy_nodes(
    cluster: Cluster, api: list[httpx.Client], store: Store, origin: int
) -> None:
    before = usage(store, SUB)[1]
    record = store.accounts.get(SUB)
    assert record is not None
    head_room = 60_000_000
    store.usage.record([UsageDelta(record.id, record.parent_id, GB - before - head_room)],
                       datetime.now(UTC).date())
    assert api[0].post("/api/sub/edit/", data={"username": SUB, "monthly_limit": "1"}
                       ).status_code == 200  # every node reloads the account (and its usage)
    moved = [0, 0, 0]
    refused = [False, False, False]
    started = time.monotonic()

    def drive(index: int) -> None:
        while time.monotonic() - started < 30:
            status, nbytes = fetch(cluster.proxy_address(index), origin)
            if status == 509:
                refused[index] = True
                return
            assert status in (200, 0)  # 0: cut at the limit before its status line
            moved[index] += nbytes

    time.sleep(0.5)
    threads = [threading.Thread(target=drive, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert all(refused), (moved, refused)
    rate = sum(moved) / elapsed
    overshoot = sum(moved) - head_room
    assert overshoot <= rate * (cluster.flush_interval + 2.0), (overshoot, rate)
    assert all(m > 0 for m in moved)  # every node carried traffic


def test_deactivation_on_one_api_node_reaches_every_proxy_node_within_a_second(
    cluster: Cluster, api: list[httpx.Client], origin: int
) -> None:
    api[1].post("/api/sub/edit/", data={"username": SUB, "monthly_limit": "0"})
    wait_until(lambda: all(fetch(cluster.proxy_address(i), origin)[0] == 200
                           for i in range(3)), 2.0)
    assert api[1].post("/api/sub/deactivate/", data={"username": SUB}).status_code == 200
    changed = time.monotonic()
    for index in range(3):
        wait_until(lambda i=index: fetch(cluster.proxy_address(i), origin)[0] == 402,  # type: ignore[misc]
                   1.0 - (time.monotonic() - changed))
    assert time.monotonic() - changed < 1.0
    assert api[0].post("/api/sub/activate/", data={"username": SUB}).status_code == 200


def test_a_ban_from_failures_on_one_proxy_node_holds_on_the_others(
    cluster: Cluster, api: list[httpx.Client], origin: int
) -> None:
    source = "127.0.0.99"
    wait_until(lambda: fetch(cluster.proxy_address(1), origin, source=source)[0] == 200, 2.0)
    for _ in range(4):
        assert fetch(cluster.proxy_address(0), origin, password="wrong", source=source)[0] == 407
    banned = time.monotonic()
    for index in (1, 2):
        wait_until(lambda i=index: fetch(  # type: ignore[misc]
                   cluster.proxy_address(i), origin, source=source)[0] == 407, 1.0)
    assert time.monotonic() - banned < 1.0
    assert fetch(cluster.proxy_address(2), origin)[0] == 200  # another client is not banned


def test_a_sub_account_created_through_an_api_node_works_on_every_proxy_node_at_once(
    cluster: Cluster, api: list[httpx.Client], origin: int
) -> None:
    """No wait between creating and using (issue 12 item 4): each proxy node reads an
    unknown credential through from the store before it would answer 407."""
    import base64
    import socket

    source = "127.0.0.98"
    for i in range(6):
        name, password = f"pm_now{i}", f"now-password-{i}"
        created = api[i % 2].post("/api/sub/create/", data={"username": name,
                                                             "password": password})
        assert created.status_code == 200, created.text
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        for node in range(3):
            with socket.create_connection(cluster.proxy_address(node), timeout=10,
                                          source_address=(source, 0)) as sock:
                sock.sendall((f"GET http://127.0.0.1:{origin}/ HTTP/1.1\r\nHost: x\r\n"
                              f"Proxy-Authorization: Basic {token}\r\n"
                              "Connection: close\r\n\r\n").encode())
                status = sock.recv(64).split(b" ", 2)[1]
            assert status != b"407", (name, node)
    # Nothing of it counted toward a ban: the client is served with the first credentials.
    assert fetch(cluster.proxy_address(0), origin, source=source)[0] == 200


def test_a_ban_from_api_failures_holds_on_every_proxy_node_within_a_second(
    cluster: Cluster, api: list[httpx.Client], origin: int
) -> None:
    source = "127.0.0.97"
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=cluster.api_url(1), auth=(PARENT, "wrong"), timeout=10,
                      transport=transport) as wrong:
        assert [wrong.get("/api/ips/").status_code for _ in range(4)] == [401] * 4
    banned = time.monotonic()
    for index in range(3):
        wait_until(lambda i=index: fetch(  # type: ignore[misc]
                   cluster.proxy_address(i), origin, source=source)[0] == 407, 1.0)
    assert time.monotonic() - banned < 1.0
