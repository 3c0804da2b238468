"""CONNECT tunnels: TLS through the proxy with real clients, egress choice, refusals."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
import httpx
import requests

from .clients import Reply, basic, connect, curl, is_closed, read_reply
from .conftest import EGRESS, Env, echo_json


def open_tunnel(
    env: Env, target: str, *extra: str, proxy: str = "open"
) -> tuple[socket.socket, Reply]:
    sock = connect(env.address(proxy))
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", f"Proxy-Authorization: {basic()}",
             *extra]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock, read_reply(sock, head_only=True)


def test_curl_https_through_a_tunnel(env: Env) -> None:
    result = curl("-i", "--proxytunnel", "-x", env.proxy_url(),
                  "--cacert", str(env.origins.ca_file), f"https://localhost:{env.origins.https}/echo")
    assert result.returncode == 0, result.stderr
    assert b"HTTP/1.1 200 Connection established" in result.stdout
    tunnel_head, _, rest = result.stdout.partition(b"\r\n\r\n")
    peer = echo_json(rest.partition(b"\r\n\r\n")[2])["peer"]
    assert f"X-ProxyMesh-IP: {peer}".encode() in tunnel_head.split(b"\r\n")


def test_requests_httpx_aiohttp_https(env: Env) -> None:
    url = f"https://localhost:{env.origins.https}/bytes/300000"
    ca = str(env.origins.ca_file)
    proxy = env.proxy_url()
    assert len(requests.get(url, proxies={"https": proxy}, verify=ca, timeout=10).content) \
        == 300_000
    with httpx.Client(proxy=proxy, verify=ssl.create_default_context(cafile=ca),
                      timeout=10) as client:
        assert len(client.get(url).content) == 300_000

    async def with_aiohttp() -> int:
        context = ssl.create_default_context(cafile=ca)
        async with aiohttp.ClientSession() as session, session.get(
            url, proxy=proxy, ssl=context
        ) as response:
            return len(await response.read())

    assert asyncio.run(with_aiohttp()) == 300_000


def test_each_tunnel_rotates_and_plain_http_works_inside(env: Env) -> None:
    peers = set()
    for _ in range(12):
        sock, reply = open_tunnel(env, f"127.0.0.1:{env.origins.http}")
        assert reply.status == 200
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")  # anything over TCP
        inner = read_reply(sock)
        peer = echo_json(inner.body)["peer"]
        assert reply.headers["x-proxymesh-ip"] == peer
        peers.add(peer)
        sock.close()
    assert len(peers) >= 5 and peers <= set(EGRESS)


def test_tunnel_options_pin_exclude_and_country(env: Env) -> None:
    target = f"127.0.0.1:{env.origins.http}"
    sock, reply = open_tunnel(env, target, "X-ProxyMesh-IP: 127.0.0.9")
    assert reply.headers["x-proxymesh-ip"] == "127.0.0.9"
    sock.close()
    sock, reply = open_tunnel(env, target, "X-ProxyMesh-Prefer-IP: 10.9.9.9")
    assert reply.headers["x-proxymesh-ip-not-found"] == "10.9.9.9"
    assert reply.headers["x-proxymesh-ip"] in EGRESS
    sock.close()
    sock, reply = open_tunnel(env, target, "X-ProxyMesh-Country: ZZ")
    assert reply.status == 400 and "ZZ" in reply.headers["x-proxymesh-error"]
    sock.close()


def test_refused_connect_keeps_the_connection_for_a_retry(env: Env) -> None:
    target = f"127.0.0.1:{env.origins.http}"
    with connect(env.address()) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        refused = read_reply(sock)
        assert refused.status == 407 and "proxy-authenticate" in refused.headers
        sock.sendall(
            f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
            f"Proxy-Authorization: {basic()}\r\n\r\n".encode()
        )
        assert read_reply(sock, head_only=True).status == 200
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(sock).status == 200


def test_connect_failures(env: Env) -> None:
    sock, reply = open_tunnel(env, "127.0.0.1:1")
    assert reply.status == 502 and reply.headers["proxy-status"].startswith(
        "meshproxy; error=connection_refused")
    sock.close()
    sock, reply = open_tunnel(env, "127.0.0.1:99999")
    assert reply.status == 400
    assert is_closed(sock)


def test_tunnel_closes_when_the_origin_closes(env: Env) -> None:
    sock, reply = open_tunnel(env, f"127.0.0.1:{env.origins.raw.port}")
    assert reply.status == 200
    sock.sendall(b"GET /until-close HTTP/1.1\r\nHost: x\r\n\r\n")
    inner = read_reply(sock)
    assert inner.body == b"until close"
    assert is_closed(sock)
    sock.close()
