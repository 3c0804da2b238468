"""Egress through real upstream proxies on loopback: tinyproxy (HTTP CONNECT, with and
without Basic credentials, and behind TLS for https://) and microsocks (SOCKS5, with and
without RFC 1929 credentials). Each upstream leaves from its own loopback address, so
the origin's peer address says which one carried a request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from support.polling import wait_until

from .clients import basic, connect, curl, read_reply
from .conftest import Env, LoopThread, Origins
from .upstreams import UpstreamProcess, egress_env, tls_upstream, upstream_proxies

__all__ = ["egress_env", "tls_upstream", "upstream_proxies"]  # the fixtures, used by name

UpstreamFactory = Callable[..., UpstreamProcess]


def fetch(env: Env, **headers: str) -> requests.Response:
    return requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()},
                        headers=headers, timeout=10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    leftover: bytes  # the tunnel's first bytes, read with the head


def tunnel(env: Env, target: tuple[str, int], **headers: str) -> tuple[socket.socket, Answer]:
    """A CONNECT through the proxy: the open socket and the proxy's answer."""
    sock = socket.create_connection(env.address(), timeout=10)
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    host = f"{target[0]}:{target[1]}"
    sock.sendall(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: "
                 f"{basic()}\r\n{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, leftover = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return sock, Answer(int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()},
                        leftover)


def echo_through(sock: socket.socket, origins: Origins) -> dict[str, Any]:
    """A GET of the origin's /echo inside a tunnel (nothing of it sent before)."""
    sock.sendall(f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{origins.http}\r\n"
                 "Connection: close\r\n\r\n".encode())
    reply = read_reply(sock)
    assert reply.status == 200, reply
    result: dict[str, Any] = json.loads(reply.body)
    return result


@pytest.mark.parametrize(
    ("kind", "credentials"),
    [("http", {}), ("http", {"username": "u1", "password": "p1"}),
     ("socks5", {}), ("socks5", {"username": "u2", "password": "p@2:x%"})],
)
def test_requests_and_tunnels_leave_through_the_upstream(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory, kind: str,
    credentials: dict[str, str],
) -> None:
    upstream = upstream_proxies(kind, "127.0.0.51", **credentials)
    url = upstream.url()
    if credentials:  # percent-encoded in the URL, as a provider's list would be turned
        url = url.replace(credentials["password"], quote(credentials["password"], safe=""))
    env = egress_env([{"upstream": url, "name": "up-1", "country": "US"}])
    # Plain HTTP: through a tunnel of the upstream's; the origin sees the upstream's exit.
    for _ in range(3):
        response = fetch(env)
        assert response.status_code == 200
        assert response.json()["peer"] == "127.0.0.51"
        assert response.headers["X-ProxyMesh-IP"] == "up-1"
        sent = {k.lower() for k, _ in response.json()["headers"]}
        assert "proxy-authorization" not in sent
    # CONNECT: the tunnel's answer names the upstream; bytes inside reach the origin.
    sock, answer = tunnel(env, ("127.0.0.1", env.origins.http))
    with sock:
        assert answer.status == 200 and answer.headers["x-proxymesh-ip"] == "up-1"
        assert echo_through(sock, env.origins)["peer"] == "127.0.0.51"
    # HTTPS through the tunnel with a real client.
    response = requests.get(f"https://127.0.0.1:{env.origins.https}/echo",
                            proxies={"https": env.proxy_url()},
                            verify=str(env.origins.ca_file), timeout=10)
    assert response.status_code == 200 and response.json()["peer"] == "127.0.0.51"
    (state,) = env.node.egress_health()["open"].values()
    assert state.up and state.failures == 0 and state.latency is not None
    # The access log's egress names the upstream ("who used egress X"), never a password.
    log = env.node.settings.data_dir / env.node.settings.access_log.path
    lines: list[str] = []

    def written() -> bool:
        nonlocal lines
        lines = log.read_text().splitlines() if log.exists() else []
        return len(lines) >= 4

    wait_until(written, 10, lambda: lines)
    assert {json.loads(line)["egress"] for line in lines} == {"up-1"}
    assert all(credentials.get("password", "\0") not in line for line in lines)


def test_bad_upstream_credentials_are_a_502_naming_the_upstream(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory,
) -> None:
    http = upstream_proxies("http", "127.0.0.51", username="u1", password="right")
    socks = upstream_proxies("socks5", "127.0.0.53", username="u2", password="right")
    for url, name in ((http.url().replace("right", "wrong"), "http-1"),
                      (socks.url().replace("right", "wrong"), "socks-1")):
        env = egress_env([{"upstream": url, "name": name}], egress_max_failures=5)
        response = fetch(env)
        assert response.status_code == 502
        assert f"upstream {name}" in response.text, response.text
        sock, answer = tunnel(env, ("127.0.0.1", env.origins.http))
        sock.close()
        assert answer.status == 502
        (state,) = env.node.egress_health()["open"].values()
        assert state.failures_total >= 2 and state.up  # 2 of 5: still in rotation


def test_a_target_that_speaks_first_loses_no_byte_to_the_handshake(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory, origin_thread: LoopThread,
) -> None:
    """The CONNECT answer is read up to its end and not one byte further (peeked)."""

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hello from the target\r\n")
        await writer.drain()
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(banner, "127.0.0.1", 0)

    server = origin_thread.run(serve())
    port = server.sockets[0].getsockname()[1]
    try:
        for kind in ("http", "socks5"):
            env = egress_env([{"upstream": upstream_proxies(kind, "127.0.0.51").url()}])
            for _ in range(5):
                sock, answer = tunnel(env, ("127.0.0.1", port))
                with sock:
                    assert answer.status == 200
                    rest = answer.leftover
                    while not rest.endswith(b"\r\n"):
                        piece = sock.recv(100)
                        assert piece
                        rest += piece
                    assert rest == b"220 hello from the target\r\n"
                    sock.sendall(b"echo me\r\n")
                    assert sock.recv(100) == b"echo me\r\n"
    finally:
        origin_thread.run(_closed(server))


async def _closed(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def test_an_https_upstream_gets_tls_then_connect(
    egress_env: Callable[..., Env], tls_upstream: tuple[int, Path],
) -> None:
    """https://: TLS to the upstream (verified against upstream_ca_file), CONNECT inside
    (a TLS front on loopback relaying to tinyproxy stands in for a provider's)."""
    port, cert = tls_upstream
    env = egress_env([{"upstream": f"https://u3:p3@localhost:{port}", "name": "tls-1"}],
                     upstream_ca_file=str(cert))
    for _ in range(3):
        response = fetch(env)
        assert response.status_code == 200, response.text
        assert response.json()["peer"] == "127.0.0.52"
        assert response.headers["X-ProxyMesh-IP"] == "tls-1"
    response = requests.get(f"https://127.0.0.1:{env.origins.https}/echo",
                            proxies={"https": env.proxy_url()},
                            verify=str(env.origins.ca_file), timeout=10)
    assert response.status_code == 200 and response.json()["peer"] == "127.0.0.52"
    # An upstream whose certificate is not trusted is refused, never used.
    untrusted = egress_env([{"upstream": f"https://u3:p3@localhost:{port}"}])
    assert fetch(untrusted).status_code == 502


def test_socks5_clients_leave_through_every_kind_of_upstream(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory,
    tls_upstream: tuple[int, Path],
) -> None:
    """The SOCKS5 listener's CONNECT goes through the same dialer: an HTTP CONNECT, a
    SOCKS5 CONNECT or TLS + CONNECT upstream carries it."""
    tls_port, cert = tls_upstream
    cases = [
        (upstream_proxies("http", "127.0.0.51").url(), "127.0.0.51"),
        (upstream_proxies("socks5", "127.0.0.53", username="u", password="p").url(),
         "127.0.0.53"),
        (f"https://u3:p3@localhost:{tls_port}", "127.0.0.52"),
    ]
    for url, exit_address in cases:
        env = egress_env([{"upstream": url, "name": "up-1"}], upstream_ca_file=str(cert),
                         proxy_fields={"socks_port": 31380, "socks_listen_port": 0})
        host, port = env.node.socks_addresses["open"]
        for _ in range(2):
            result = curl("-x", f"socks5h://alice:pw@{host}:{port}", env.origins.url("/echo"))
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["peer"] == exit_address, url


def test_a_pool_of_three_upstreams_loses_one_and_takes_it_back(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory, origins: Origins,
) -> None:
    """Two HTTP upstreams and one SOCKS5 upstream: 30 requests use all three; one killed,
    the next 20 all succeed and none uses it (connect refused: retried on another
    egress, then out of rotation); restarted, a probe brings it back."""
    first = upstream_proxies("http", "127.0.0.51")
    second = upstream_proxies("http", "127.0.0.52", username="u2", password="p2")
    socks = upstream_proxies("socks5", "127.0.0.53")
    env = egress_env(
        [{"upstream": first.url(), "name": "http-1"},
         {"upstream": second.url(), "name": "http-2"},
         {"upstream": socks.url(), "name": "socks-1"}],
        egress_max_failures=2, health_check_url=origins.url("/status/204"),
        health_check_interval=0.2, health_check_max_backoff=0.4,
    )
    session = requests.Session()
    session.proxies = {"http": env.proxy_url()}

    def peer() -> str:
        response = session.get(origins.url("/echo"), timeout=10)
        assert response.status_code == 200, response.text
        address: str = response.json()["peer"]
        return address

    assert {peer() for _ in range(30)} == {"127.0.0.51", "127.0.0.52", "127.0.0.53"}
    # The X-ProxyMesh-* options name upstreams.
    for headers, exits in (({"X-ProxyMesh-IP": "socks-1"}, {"127.0.0.53"}),
                           ({"X-ProxyMesh-Not-IP": "http-1, socks-1"}, {"127.0.0.52"})):
        answers = [session.get(origins.url("/echo"), headers=headers, timeout=10)
                   for _ in range(10)]
        assert {a.json()["peer"] for a in answers} == exits
        assert {a.headers["X-ProxyMesh-IP"] for a in answers} <= {"socks-1", "http-2"}
    missing = session.get(origins.url("/echo"), headers={"X-ProxyMesh-IP": "eu-9"}, timeout=10)
    assert missing.status_code == 200 and missing.headers["X-ProxyMesh-IP-Not-Found"] == "eu-9"
    second.stop()
    after = [peer() for _ in range(20)]
    assert "127.0.0.52" not in after and set(after) == {"127.0.0.51", "127.0.0.53"}
    health = env.node.egress_health()["open"]
    assert not health["http-2"].up and "refused" in health["http-2"].last_error
    assert health["http-1"].up and health["socks-1"].up
    second.start()
    # up again by the probe's doing alone
    wait_until(lambda: env.node.egress_health()["open"]["http-2"].up, 5,
               env.node.egress_health, interval=0.05)
    back = [peer() for _ in range(30)]
    assert "127.0.0.52" in back
    assert all(state.latency is not None for state in env.node.egress_health()["open"].values())


def test_an_upstream_that_dies_after_its_handshake_is_retried_once_on_another(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory, origin_thread: LoopThread,
) -> None:
    """A fresh connection through an upstream that answers CONNECT, takes the request and
    closes before any response byte: the request goes once more, through another egress."""
    took: list[bytes] = []

    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        took.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(dies, "127.0.0.1", 0)

    server = origin_thread.run(serve())
    port = server.sockets[0].getsockname()[1]
    try:
        good = upstream_proxies("http", "127.0.0.51")
        env = egress_env([{"upstream": f"http://127.0.0.1:{port}", "name": "dies-1"},
                          {"upstream": good.url(), "name": "up-1"}])
        for _ in range(3):
            response = fetch(env, **{"X-ProxyMesh-IP": "dies-1"})  # first through dies-1
            assert response.status_code == 200, response.text
            assert response.headers["X-ProxyMesh-IP"] == "up-1"
            assert response.json()["peer"] == "127.0.0.51"
        assert len(took) == 3  # each request did reach the dying upstream first
    finally:
        origin_thread.run(_closed(server))


def test_a_request_over_64_kib_is_not_resent_when_its_upstream_dies_mid_body(
    egress_env: Callable[..., Env], upstream_proxies: UpstreamFactory, origin_thread: LoopThread,
) -> None:
    """The retry on another egress needs the whole request still held (REPLAY_LIMIT,
    64 KiB with its head): a 1,000-byte upload whose upstream dies after taking it goes
    again through the other upstream; a 200 kB one, whole or still streaming when its
    upstream dies, gets a 502 and is never sent a second time (the origin would see a
    second upload)."""
    heads: list[bytes] = []  # request heads the dying upstream read
    took: list[int] = []  # body bytes it read of each before closing

    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        took.append(len(await reader.read(16384)))  # part of a large body
        writer.close()

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(dies, "127.0.0.1", 0)

    server = origin_thread.run(serve())
    port = server.sockets[0].getsockname()[1]
    try:
        good = upstream_proxies("http", "127.0.0.51")
        env = egress_env([{"upstream": f"http://127.0.0.1:{port}", "name": "dies-1"},
                          {"upstream": good.url(), "name": "up-1"}])

        def upload(size: int) -> requests.Response:
            return requests.post(env.origins.url("/upload"), data=b"u" * size,
                                 proxies={"http": env.proxy_url()},
                                 headers={"X-ProxyMesh-IP": "dies-1"}, timeout=10)

        small = upload(1000)
        assert small.status_code == 200 and small.json()["received"] == 1000, small.text
        assert small.headers["X-ProxyMesh-IP"] == "up-1" and took == [1000]
        large = upload(200_000)  # held whole before the upstream took it, but too large
        assert large.status_code == 502, large.text  # 200: it went again, through up-1
        assert len(took) == 2 and 0 < took[1] < 200_000
        # The head first; the body only once the upstream has the head (still streaming).
        with connect(env.address()) as sock:
            sock.sendall(f"POST {env.origins.url('/upload')} HTTP/1.1\r\nHost: x\r\n"
                         f"Proxy-Authorization: {basic()}\r\nX-ProxyMesh-IP: dies-1\r\n"
                         "Content-Length: 200000\r\n\r\n".encode())
            wait_until(lambda: len(heads) == 3, 10, "the upstream never had the head")
            with contextlib.suppress(OSError):  # the proxy may answer before it all went
                sock.sendall(b"u" * 200_000)
            assert read_reply(sock).status == 502
        assert len(heads) == len(took) == 3  # dies-1 took each once; nothing was resent
    finally:
        origin_thread.run(_closed(server))
