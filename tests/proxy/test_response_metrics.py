"""Metrics that tell: responses by proxy, who answered and status class; the time to the
response head; the proxy's own 5xx answers by error type. Requests of each outcome through
a real node, then its /metrics parsed."""

from __future__ import annotations

import asyncio
import socket

import requests
from prometheus_client.parser import text_string_to_metric_families

from meshproxy.ops.metrics import registry_for, render
from meshproxy.ops.status import NodeStatus
from proxy.clients import curl
from proxy.listeners import socks_env, start_listeners
from proxy.test_socks import http_get, socks_connect
from support.polling import eventually
from support.proxy_env import Env

__all__ = ["socks_env", "start_listeners"]  # fixtures


def scrape(env: Env) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> its label sets (sorted pairs) -> value."""

    async def text() -> str:
        status = NodeStatus(store=env.store, api=False, proxy_node=env.node)
        return render(registry_for(status, asyncio.get_running_loop())).decode()

    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(env.thread.run(text())):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_responses_latency_and_upstream_errors(env: Env) -> None:
    proxies = {"http": env.proxy_url(), "https": env.proxy_url()}
    origin = env.origins.url
    for path in ("/echo", "/status/404", "/status/503", "/slow/0.3"):
        requests.get(origin(path), proxies=proxies, timeout=10)
    assert curl("-x", env.proxy_url(), "http://10.255.255.1:8080/").returncode == 0  # 403
    for _ in range(2):
        closed = requests.get(f"http://127.0.0.1:{_closed_port()}/", proxies=proxies, timeout=10)
        assert closed.status_code == 502
    wrong = requests.get(origin("/echo"), proxies={"http": env.proxy_url(password="x")},
                         timeout=10)
    assert wrong.status_code == 407

    metrics = scrape(env)
    responses = metrics["meshproxy_responses_total"]

    def count(by: str, status_class: str) -> float:
        return responses.get((("by", by), ("class", status_class), ("proxy", "open")), 0.0)

    assert count("origin", "2xx") == 2  # /echo and /slow
    assert count("origin", "4xx") == 1 and count("origin", "5xx") == 1
    assert count("proxy", "4xx") == 2  # the policy's 403 and the 407
    assert count("proxy", "5xx") == 2
    assert sum(responses.values()) == 8
    errors = metrics["meshproxy_upstream_errors_total"]
    assert errors == {(("error", "connection_refused"), ("proxy", "open")): 2.0}

    def bucket(le: str) -> float:
        return metrics["meshproxy_response_head_seconds_bucket"][(("le", le), ("proxy", "open"))]

    # Four responses relayed from the origin; the slow one took at least 0.3 s to its head.
    assert metrics["meshproxy_response_head_seconds_count"] == {(("proxy", "open"),): 4.0}
    assert bucket("+Inf") == 4 and bucket("0.25") <= 3  # the slow one is above 0.25 s
    assert 0.3 <= metrics["meshproxy_response_head_seconds_sum"][(("proxy", "open"),)] < 5


def test_socks5_refusals_and_tunnels_are_counted(socks_env: Env) -> None:
    env = socks_env
    opened, reply = socks_connect(env, ("127.0.0.1", env.origins.http))
    assert reply[:2] == b"\x05\x00"
    assert http_get(opened).startswith(b"HTTP/1.1 200")
    opened.close()
    for target in (("127.0.0.1", _closed_port()), ("no-such-host.invalid", 80), ("10.1.2.3", 80)):
        sock, reply = socks_connect(env, target)
        sock.close()
        assert reply[1] != 0

    def counted() -> bool:
        return sum(scrape(env).get("meshproxy_responses_total", {}).values()) == 4

    assert eventually(counted)  # each is counted when its connection ends
    metrics = scrape(env)
    assert metrics["meshproxy_responses_total"] == {
        (("by", "proxy"), ("class", "2xx"), ("proxy", "open")): 1.0,  # the tunnel
        (("by", "proxy"), ("class", "4xx"), ("proxy", "open")): 1.0,  # the policy's 403
        (("by", "proxy"), ("class", "5xx"), ("proxy", "open")): 2.0,
    }
    assert metrics["meshproxy_upstream_errors_total"] == {
        (("error", "connection_refused"), ("proxy", "open")): 1.0,
        (("error", "dns_error"), ("proxy", "open")): 1.0,
    }
