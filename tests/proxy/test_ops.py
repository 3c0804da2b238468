"""Health and metrics of a proxy node, and the node riding out a store outage: it keeps
serving from memory, says so in /readyz and /metrics, and loses no usage."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import requests

from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.store.engine import make_engine

from .conftest import Env
from .test_metering import close_to, curl_bytes

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
def admin(env: Env) -> Iterator[str]:
    status = NodeStatus(store=env.store, api=False, proxy_node=env.node)

    async def start() -> AdminServer:
        server = AdminServer(status, "127.0.0.1", 0)
        await server.start()
        return server

    server = env.thread.run(start())
    yield f"http://127.0.0.1:{server.port}"
    env.thread.run(server.stop())


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, (name, text)
    return float(found.group(1))


def test_metrics_count_requests_bytes_and_failures_by_proxy(env: Env, admin: str) -> None:
    moved = curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/10000"))
    assert requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url("world")},
                        timeout=10).status_code == 200
    bad = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url(password="x")},
                       timeout=10)
    assert bad.status_code == 407
    text = httpx.get(f"{admin}/metrics").text
    assert metric(text, 'meshproxy_proxy_requests_total{proxy="open"}') == 1
    assert metric(text, 'meshproxy_proxy_requests_total{proxy="world"}') == 1
    assert metric(text, 'meshproxy_proxy_bytes_total{proxy="open"}') == moved
    assert metric(text, "meshproxy_auth_failures_total") == 1
    assert metric(text, "meshproxy_auth_verifications") == 0  # every check finished
    assert metric(text, "meshproxy_auth_verifications_refused_total") == 0
    assert metric(text, 'meshproxy_proxy_active_connections{proxy="private"}') == 0
    assert metric(text, "meshproxy_accounts_loaded") == 1
    assert 'meshproxy_backend_up{backend="the store (usage)"} 1.0' in text
    assert httpx.get(f"{admin}/healthz").json()["alive"] is True
    ready = httpx.get(f"{admin}/readyz")
    assert ready.status_code == 200 and ready.json()["degraded"] is False
    assert httpx.get(f"{admin}/nothing").status_code == 404
    assert httpx.post(f"{admin}/metrics").status_code == 405


def test_a_store_outage_is_ridden_out_and_no_usage_is_lost(env: Env, admin: str) -> None:
    working = env.store.engine
    env.store.engine = make_engine(UNREACHABLE)
    try:
        moved = sum(curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/200000"))
                    for _ in range(3))
        with pytest.raises(Exception):  # noqa: B017 - the store's own error
            env.flush()
        env.sync()  # the change feed is down too: logged, not raised
        ready = httpx.get(f"{admin}/readyz")
        assert ready.status_code == 200 and ready.json()["degraded"] is True
        text = httpx.get(f"{admin}/metrics").text
        assert 'meshproxy_backend_up{backend="the store (usage)"} 0.0' in text
        assert metric(text, "meshproxy_usage_unflushed_bytes") == moved
        moved += curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/1000"))  # serving
    finally:
        env.store.engine.dispose()
        env.store.engine = working
    env.flush()
    _, total = env.usage("alice")
    assert close_to(moved, total), (moved, total)  # every byte from the outage
    text = httpx.get(f"{admin}/metrics").text
    assert 'meshproxy_backend_up{backend="the store (usage)"} 1.0' in text
