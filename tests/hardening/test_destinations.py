"""Destination policy at connect time: private, loopback, link-local and other special
ranges, names that resolve to them, redirects to them, and DNS rebinding between the
check and the connect. Loopback stands in for both sides: 127.0.0.2 is made "public" by
`allow_destinations`, 127.0.0.3 is a forbidden address with a listener that must never see
a connection. Names are answered by a stub resolver in this process (no real DNS), and a
guard refuses any connect to a non-loopback address, so nothing ever leaves the machine.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests

from meshproxy.proxy.server import dial as dial_module
from meshproxy.proxy.server.resolver import Resolver
from proxy.clients import basic

from .conftest import Env
from .raw import exchange, settle

ALLOWED, FORBIDDEN = "127.0.0.2", "127.0.0.3"


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", unquote(self.path.split("to=", 1)[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"public origin"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Sites:
    """The same port on the allowed and the forbidden address."""

    def __init__(self) -> None:
        self.forbidden = socket.socket()
        self.forbidden.bind((FORBIDDEN, 0))
        self.forbidden.listen(16)
        self.forbidden.setblocking(False)
        self.port = self.forbidden.getsockname()[1]
        self.server = ThreadingHTTPServer((ALLOWED, self.port), _Origin)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forbidden_contacted(self) -> bool:
        try:
            conn, _ = self.forbidden.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.forbidden.close()


class StubDns:
    """Answers from `answers[name]`, one list per lookup (the last one repeats), with no
    caching (TTL 0): DNS rebinding. Installed on the Resolver class, so every listener's
    resolver uses it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch,
                 answers: dict[str, list[tuple[str, ...]]]) -> None:
        self.answers = answers
        self.calls: dict[str, int] = {}
        real_cached = Resolver.cached
        stub = self

        async def resolve(resolver: Resolver, host: str, port: int) -> tuple[str, ...]:
            if host not in stub.answers:
                raise OSError(f"{host}: not in the stub")
            n = stub.calls.get(host, 0)
            stub.calls[host] = n + 1
            sequence = stub.answers[host]
            return sequence[min(n, len(sequence) - 1)]

        def cached(resolver: Resolver, host: str) -> tuple[str, ...] | None:
            return None if host in stub.answers else real_cached(resolver, host)

        monkeypatch.setattr(Resolver, "resolve", resolve)
        monkeypatch.setattr(Resolver, "cached", cached)


@pytest.fixture
def sites() -> Iterator[Sites]:
    running = Sites()
    yield running
    running.close()


@pytest.fixture
def guarded(start_env: Callable[..., Env], monkeypatch: pytest.MonkeyPatch
            ) -> tuple[Env, list[str]]:
    """A node whose only permitted destination is 127.0.0.2; every connect it makes is
    recorded, and any outside loopback is refused before it leaves."""
    env = start_env(allow_destinations=[f"{ALLOWED}/32"])
    env.account("alice")
    env.sync()
    connected: list[str] = []
    real_connect = dial_module.connect_socket

    async def recording(loop: Any, ip: str, port: int, egress: str | None,
                        within: float, **options: Any) -> socket.socket:
        connected.append(ip)
        if not (ip.startswith("127.") or ip == "::1"):
            raise OSError(f"test guard: {ip} is not loopback")
        return await real_connect(loop, ip, port, egress, within, **options)

    monkeypatch.setattr(dial_module, "connect_socket", recording)
    return env, connected


def _proxy_get(env: Env, url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, proxies={"http": env.proxy_url()}, timeout=10, **kwargs)


SPECIAL = [
    "127.0.0.3", "127.0.0.1", "localhost", "2130706433", "0x7f.0.0.3", "127.3", "0177.0.0.1",
    "0", "0.0.0.0", "[::]", "[::1]", "[::ffff:127.0.0.3]", "[::ffff:7f00:3]",
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254",
    "[fe80::1]", "[fc00::1]", "224.0.0.1", "255.255.255.255", "198.18.0.1", "[2001:db8::1]",
    "[64:ff9b::7f00:3]", "[2002:7f00:3::1]", "[2002:a00:1::1]",  # NAT64 and 6to4 of private
]


def test_special_destinations_are_refused_before_any_connect(
    guarded: tuple[Env, list[str]], sites: Sites
) -> None:
    """Numeric forms are read by the system resolver itself (inet_aton: no DNS query)."""
    env, connected = guarded
    for host in SPECIAL:
        for request in (
            f"GET http://{host}:{sites.port}/ HTTP/1.1\r\nHost: x\r\n",
            f"CONNECT {host}:{sites.port} HTTP/1.1\r\nHost: x\r\n",
        ):
            outcome = exchange(env.address(), (
                request + f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
            assert outcome.status == 403, (request, outcome)
            assert b"destination_ip_prohibited" in outcome.head
    assert connected == [] and not sites.forbidden_contacted()
    settle(env)


def test_the_allowed_address_is_served(guarded: tuple[Env, list[str]], sites: Sites) -> None:
    env, connected = guarded
    response = _proxy_get(env, f"http://{ALLOWED}:{sites.port}/")
    assert response.status_code == 200 and response.text == "public origin"
    assert connected == [ALLOWED]


def test_names_resolving_to_forbidden_addresses_are_refused(
    guarded: tuple[Env, list[str]], sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, connected = guarded
    StubDns(monkeypatch, {
        "inside.test": [(FORBIDDEN,)],
        "metadata.test": [("169.254.169.254",)],
        "mixed.test": [(FORBIDDEN, "10.1.2.3", ALLOWED)],
    })
    assert _proxy_get(env, f"http://inside.test:{sites.port}/").status_code == 403
    assert _proxy_get(env, f"http://metadata.test:{sites.port}/").status_code == 403
    mixed = _proxy_get(env, f"http://mixed.test:{sites.port}/")  # only the allowed one is used
    assert mixed.status_code == 200 and mixed.text == "public origin"
    assert connected == [ALLOWED] and not sites.forbidden_contacted()


def test_dns_rebinding_between_check_and_connect(
    guarded: tuple[Env, list[str]], sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name answers the allowed address first and the forbidden one on every later
    lookup: the proxy connects only to an address it checked, whichever lookup it uses."""
    env, connected = guarded
    StubDns(monkeypatch, {"rebind.test": [(ALLOWED,), (FORBIDDEN,)]})
    statuses = []
    for _ in range(4):
        statuses.append(_proxy_get(env, f"http://rebind.test:{sites.port}/").status_code)
        with socket.create_connection(env.address()) as sock:
            sock.sendall(f"CONNECT rebind.test:{sites.port} HTTP/1.1\r\nHost: x\r\n"
                         f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
            statuses.append(int(sock.recv(100).split()[1]))
    assert set(statuses) <= {200, 403} and 403 in statuses
    assert set(connected) == {ALLOWED}
    assert not sites.forbidden_contacted()


def test_a_redirect_to_a_forbidden_address_is_refused(
    guarded: tuple[Env, list[str]], sites: Sites
) -> None:
    env, connected = guarded
    for target in (f"http://{FORBIDDEN}:{sites.port}/", f"http://127.1:{sites.port}/",
                   f"http://[::ffff:{FORBIDDEN}]:{sites.port}/"):
        response = _proxy_get(env, f"http://{ALLOWED}:{sites.port}/redirect?to={quote(target)}")
        assert response.status_code == 403, target  # the client followed; the proxy refused
        assert [r.status_code for r in response.history] == [302]
    assert set(connected) == {ALLOWED} and not sites.forbidden_contacted()


def test_a_name_that_does_not_resolve_is_a_502_that_says_so(
    guarded: tuple[Env, list[str]], sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS failure (the stub answers nothing for the name; no query leaves the machine)."""
    env, connected = guarded
    StubDns(monkeypatch, {})
    response = _proxy_get(env, f"http://no-such-host.test:{sites.port}/")
    assert response.status_code == 502
    assert "no-such-host.test" in response.headers["X-ProxyMesh-Error"]
    assert "Proxy-Status" in response.headers
    with socket.create_connection(env.address()) as sock:
        sock.sendall(f"CONNECT no-such-host.test:{sites.port} HTTP/1.1\r\nHost: x\r\n"
                     f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
        assert int(sock.recv(100).split()[1]) == 502
    assert connected == []
