"""`X-ProxyMesh-Not-IP` that names the address a request leaves from all the same (a pool
whose member is the host's default source, `egress = [{}]`: the pool cannot tell that
address apart) is not ignored silently: the answer says `X-ProxyMesh-Not-IP-Ignored`."""

from __future__ import annotations

import requests

from meshproxy.proxy.core.egress import not_honoured

from .clients import basic, connect, read_reply
from .conftest import Env


def test_not_honoured() -> None:
    assert not_honoured(frozenset(), "127.0.0.1") is None
    assert not_honoured(frozenset({"127.0.0.1"}), "127.0.0.1") == "127.0.0.1"
    assert not_honoured(frozenset({"127.0.0.1"}), "::ffff:127.0.0.1") == "127.0.0.1"
    assert not_honoured(frozenset({"127.0.0.9"}), "127.0.0.1") is None
    assert not_honoured(frozenset({"127.0.0.1"}), "") is None


def test_a_request_leaving_from_an_excluded_default_source_says_so(env: Env) -> None:
    # `world` leaves from the host's default source: 127.0.0.1 toward a loopback origin.
    proxies = {"http": env.proxy_url("world")}
    url = env.origins.url("/echo")
    excluded = requests.get(url, proxies=proxies, headers={"X-ProxyMesh-Not-IP": "127.0.0.1"},
                            timeout=10)
    assert excluded.status_code == 200
    assert excluded.headers["X-ProxyMesh-IP"] == "127.0.0.1"
    assert excluded.headers["X-ProxyMesh-Not-IP-Ignored"] == "127.0.0.1"
    other = requests.get(url, proxies=proxies, headers={"X-ProxyMesh-Not-IP": "127.0.0.9"},
                         timeout=10)
    assert "X-ProxyMesh-Not-IP-Ignored" not in other.headers
    plain = requests.get(url, proxies=proxies, timeout=10)
    assert "X-ProxyMesh-Not-IP-Ignored" not in plain.headers


def test_a_tunnel_leaving_from_an_excluded_default_source_says_so(env: Env) -> None:
    target = f"127.0.0.1:{env.origins.http}"
    with connect(env.address("world")) as sock:
        sock.sendall((f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                      f"Proxy-Authorization: {basic()}\r\n"
                      "X-ProxyMesh-Not-IP: 127.0.0.1\r\n\r\n").encode())
        reply = read_reply(sock, head_only=True)
    assert reply.status == 200
    assert reply.headers.get("x-proxymesh-not-ip-ignored") == "127.0.0.1"
