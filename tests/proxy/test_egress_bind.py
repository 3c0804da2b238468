"""A local egress address the host no longer holds: its bind fails before any packet is
sent, and the request (a sticky session's too) leaves through another member of the pool
instead of failing; X-ProxyMesh-IP says which one it was."""

from __future__ import annotations

from collections.abc import Callable

import requests

from .clients import curl
from .conftest import Env, echo_json
from .upstreams import egress_env

__all__ = ["egress_env"]  # the fixture, used by name

GONE = "192.0.2.10"  # TEST-NET-1: never on the host, so binding it fails (nothing is sent)


def fresh_get(env: Env, user: str) -> requests.Response:
    with requests.Session() as client:  # a new connection each time
        return client.get(env.origins.url("/echo"), timeout=10,
                          proxies={"http": env.proxy_url(user=user)})


def test_an_address_that_cannot_be_bound_is_replaced_for_sessions_and_requests(
    egress_env: Callable[..., Env],
) -> None:
    env = egress_env([{"address": "127.0.0.1"}, {"address": GONE}])
    # 20 sessions: about half rank the gone address first; every one ends on the other.
    for n in range(20):
        for _ in range(2):
            response = fresh_get(env, f"alice-session-s{n}")
            assert response.status_code == 200, response.text
            assert response.headers["X-ProxyMesh-IP"] == "127.0.0.1"
            assert response.json()["peer"] == "127.0.0.1"
    for n in range(10):  # no session: the random choice, and tunnels, alike
        assert fresh_get(env, "alice").headers["X-ProxyMesh-IP"] == "127.0.0.1"
        result = curl("-i", "--proxytunnel", "-x", env.proxy_url(user=f"alice-session-t{n}"),
                      f"http://127.0.0.1:{env.origins.http}/echo")
        assert result.returncode == 0, result.stderr
        assert b"X-ProxyMesh-IP: 127.0.0.1" in result.stdout
        assert echo_json(result.stdout.rpartition(b"\r\n\r\n")[2])["peer"] == "127.0.0.1"
