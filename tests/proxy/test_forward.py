"""Plain HTTP through the proxy with real clients: rotation, headers, framing, bodies."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import requests

from .clients import basic, connect, curl, is_closed, read_reply
from .conftest import EGRESS, Env, country_of, echo_json


def test_curl_get_leaves_from_the_pool_and_says_which_ip(env: Env) -> None:
    result = curl("-i", "-x", env.proxy_url(), env.origins.url("/echo"))
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    peer = echo_json(body)["peer"]
    assert peer in EGRESS
    assert f"X-ProxyMesh-IP: {peer}".encode() in head.split(b"\r\n")


def test_rotation_per_request_on_one_client_connection(env: Env) -> None:
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    peers = []
    sockets = set()
    for _ in range(25):
        connection.request(
            "GET", env.origins.url("/echo"), headers={"Proxy-Authorization": basic()}
        )
        response = connection.getresponse()
        payload = echo_json(response.read())
        assert response.getheader("X-ProxyMesh-IP") == payload["peer"]
        peers.append(payload["peer"])
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1  # one client connection throughout
    assert len(set(peers)) >= 8 and set(peers) <= set(EGRESS)


def test_proxy_headers_never_reach_the_origin(env: Env) -> None:
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("GET", env.origins.url("/echo?x=1"), skip_host=True)
    for name, value in [
        ("Host", "spoofed.example"),
        ("Proxy-Authorization", basic()),
        ("Proxy-Connection", "keep-alive"),
        ("X-ProxyMesh-Country", "US"),
        ("X-ProxyMesh-Not-IP", "127.0.0.2"),
        ("X-ProxyMesh-Timeout", "20"),
        ("X-ProxyMesh-Anything", "1"),
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "hop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("X-Kept", "yes"),
    ]:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    payload = echo_json(response.read())
    names = {name.lower() for name, _ in payload["headers"]}
    assert names.isdisjoint({"proxy-authorization", "proxy-connection", "x-proxymesh-country",
                             "x-proxymesh-not-ip", "x-proxymesh-timeout", "x-proxymesh-anything",
                             "x-private", "keep-alive", "te", "upgrade", "via",
                             "x-forwarded-for"}), names
    headers = dict(payload["headers"])
    assert headers["Host"] == f"127.0.0.1:{env.origins.http}"
    assert headers["X-Kept"] == "yes"
    assert payload["path"] == "/echo?x=1"


def test_origin_cannot_spoof_proxy_headers(env: Env) -> None:
    response = requests.get(env.origins.url("/spoof"), proxies={"http": env.proxy_url()},
                            timeout=10)
    assert response.headers["X-ProxyMesh-IP"] in EGRESS
    assert "Keep-Alive" not in response.headers


def test_forwarded_headers_when_configured(start_env: Callable[..., Env]) -> None:
    environment = start_env(add_forwarded_headers=True)
    environment.account("alice")
    environment.sync()
    response = requests.get(environment.origins.url("/echo"),
                            proxies={"http": environment.proxy_url()}, timeout=10)
    headers = dict(response.json()["headers"])
    assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["Via"] == "1.1 meshproxy"


def test_requests_httpx_aiohttp_and_wget(env: Env, tmp_path: Path) -> None:
    url = env.origins.url("/bytes/100000")
    proxy = env.proxy_url()
    assert len(requests.get(url, proxies={"http": proxy}, timeout=10).content) == 100_000
    with httpx.Client(proxy=proxy, timeout=10) as client:
        assert len(client.get(url).content) == 100_000

    async def with_aiohttp() -> int:
        async with aiohttp.ClientSession() as session, session.get(url, proxy=proxy) as response:
            return len(await response.read())

    assert asyncio.run(with_aiohttp()) == 100_000
    target = tmp_path / "wget.out"
    done = subprocess.run(
        ["wget", "-q", "-O", str(target), "-e", "use_proxy=yes", "-e", f"http_proxy={proxy}", url],
        capture_output=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.stat().st_size == 100_000


def test_chunked_bodies_both_ways(env: Env, tmp_path: Path) -> None:
    payload = tmp_path / "upload.bin"
    payload.write_bytes(b"y" * 3_000_001)
    result = curl("-x", env.proxy_url(), "-H", "Transfer-Encoding: chunked",
                  "--data-binary", f"@{payload}", env.origins.url("/upload"))
    assert json.loads(result.stdout) == {"received": 3_000_001, "chunked": True}
    streamed = requests.post(env.origins.url("/upload"), data=(b"z" * 1000 for _ in range(500)),
                             proxies={"http": env.proxy_url()}, timeout=10)
    assert streamed.json() == {"received": 500_000, "chunked": True}
    download = requests.get(env.origins.url("/chunked/1234567"),
                            proxies={"http": env.proxy_url()}, timeout=10)
    assert download.headers["Transfer-Encoding"] == "chunked"
    assert len(download.content) == 1_234_567


def test_expect_100_continue(env: Env, tmp_path: Path) -> None:
    payload = tmp_path / "body.bin"
    payload.write_bytes(b"e" * 200_000)
    for url in (env.origins.raw_url("/continue"), env.origins.url("/upload")):
        result = curl("-i", "-x", env.proxy_url(), "-H", "Expect: 100-continue",
                      "--expect100-timeout", "10", "--data-binary", f"@{payload}", url)
        assert result.returncode == 0, result.stderr
        assert b"HTTP/1.1 100 Continue" in result.stdout
        assert b"got 200000" in result.stdout or b'"received": 200000' in result.stdout


def test_http10_client(env: Env) -> None:
    with connect(env.address()) as sock:
        sock.sendall(
            f"GET {env.origins.url('/chunked/5000')} HTTP/1.0\r\n"
            f"Proxy-Authorization: {basic()}\r\n\r\n".encode()
        )
        reply = read_reply(sock)
        assert reply.status == 200 and len(reply.body) == 5000  # de-chunked by the origin
        assert "transfer-encoding" not in reply.headers
        assert is_closed(sock)
    result = curl("-0", "-x", env.proxy_url(), env.origins.url("/echo"))
    assert echo_json(result.stdout)["version"] == "1.0"


def test_head_204_304_framing_on_one_connection(env: Env) -> None:
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    auth = {"Proxy-Authorization": basic()}
    for method, path, status in [
        ("HEAD", "/bytes/5000", 200),
        ("GET", "/status/204", 204),
        ("GET", "/status/304", 304),
        ("HEAD", "/chunked/100", 200),
        ("GET", "/bytes/10", 200),
    ]:
        connection.request(method, env.origins.url(path), headers=auth)
        response = connection.getresponse()
        body = response.read()
        assert response.status == status
        assert body == (b"x" * 10 if path == "/bytes/10" else b"")
    connection.close()


def test_stale_pooled_connection_is_retried(env: Env) -> None:
    host, port = env.address()
    headers = {"Proxy-Authorization": basic(), "X-ProxyMesh-IP": "127.0.0.5"}
    for _ in range(3):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", env.origins.raw_url("/stale"), headers=headers)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"fresh")
        assert response.getheader("X-ProxyMesh-IP") == "127.0.0.5"
        connection.close()


def test_close_delimited_response(env: Env) -> None:
    with connect(env.address()) as sock:
        sock.sendall(
            f"GET {env.origins.raw_url('/until-close')} HTTP/1.1\r\nHost: x\r\n"
            f"Proxy-Authorization: {basic()}\r\n\r\n".encode()
        )
        reply = read_reply(sock)
        assert reply.status == 200 and reply.body == b"until close"
        assert reply.headers["connection"] == "close"


def test_ipv6_destination(env: Env) -> None:
    url = f"http://[::1]:{env.origins.ipv6}/echo"
    world = requests.get(url, proxies={"http": env.proxy_url("world")}, timeout=10)
    assert world.json()["peer"] == "::1" and world.headers["X-ProxyMesh-IP"] == "::1"
    open_pool_is_ipv4_only = requests.get(url, proxies={"http": env.proxy_url("open")}, timeout=10)
    assert open_pool_is_ipv4_only.status_code == 502
    assert "IPv6" in open_pool_is_ipv4_only.headers["X-ProxyMesh-Error"]


def test_ipv4_mapped_literals_are_ipv4_destinations(env: Env) -> None:
    """`[::ffff:127.0.0.1]` names an IPv4 host: the IPv4-only pool routes it (policy and
    egress family alike), for plain requests and tunnels; spelled out in hex too."""
    for literal in ("::ffff:127.0.0.1", "::ffff:7f00:1"):
        url = f"http://[{literal}]:{env.origins.http}/echo"
        response = requests.get(url, proxies={"http": env.proxy_url("open")}, timeout=10)
        assert response.status_code == 200, response.headers.get("X-ProxyMesh-Error")
        assert response.json()["peer"] == response.headers["X-ProxyMesh-IP"] in EGRESS
        with connect(env.address()) as sock:
            target = f"[{literal}]:{env.origins.http}"
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                         f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
            established = read_reply(sock, head_only=True)
            assert established.status == 200, established.raw_head
            assert established.headers["x-proxymesh-ip"] in EGRESS
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            inside = read_reply(sock)
            assert echo_json(inside.body)["peer"] == established.headers["x-proxymesh-ip"]


def test_pipelined_requests_are_each_parsed_and_authenticated(env: Env) -> None:
    url = env.origins.url("/echo")
    with connect(env.address()) as sock:
        sock.sendall(
            f"GET {url}?first HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {basic()}\r\n\r\n"
            f"GET {url}?second HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        first = read_reply(sock)
        assert first.status == 200 and echo_json(first.body)["path"] == "/echo?first"
        second = read_reply(sock)
        assert second.status == 407


def test_upstream_refused_and_timeout(env: Env) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = requests.get(f"http://127.0.0.1:{port}/", proxies={"http": env.proxy_url()},
                           timeout=10)
    assert refused.status_code == 502
    assert "refused" in refused.headers["X-ProxyMesh-Error"]
    assert refused.headers["Proxy-Status"].startswith("meshproxy; error=connection_refused")
    slow = requests.get(env.origins.url("/slow/3"), proxies={"http": env.proxy_url()},
                        headers={"X-ProxyMesh-Timeout": "0.5"}, timeout=10)
    assert slow.status_code == 504
    assert slow.elapsed.total_seconds() < 2.5
    assert "timed out" in slow.headers["X-ProxyMesh-Error"]


def test_pinning_exclusion_and_country(env: Env) -> None:
    proxies = {"http": env.proxy_url()}
    url = env.origins.url("/echo")
    for header in ("X-ProxyMesh-IP", "X-ProxyMesh-Prefer-IP"):
        for _ in range(3):
            pinned = requests.get(url, proxies=proxies, headers={header: "127.0.0.33"}, timeout=10)
            assert pinned.json()["peer"] == pinned.headers["X-ProxyMesh-IP"] == "127.0.0.33"
            assert "X-ProxyMesh-IP-Not-Found" not in pinned.headers
    missing = requests.get(url, proxies=proxies, headers={"X-ProxyMesh-IP": "10.20.30.40"},
                           timeout=10)
    assert missing.headers["X-ProxyMesh-IP-Not-Found"] == "10.20.30.40"
    assert missing.json()["peer"] == missing.headers["X-ProxyMesh-IP"] in EGRESS
    allowed = [a for a in EGRESS if country_of(a) == "US"]
    excluded = ",".join(allowed[:-2])
    seen = set()
    for _ in range(10):
        response = requests.get(url, proxies=proxies, timeout=10, headers={
            "X-ProxyMesh-Country": "us", "X-ProxyMesh-Not-IP": excluded})
        seen.add(response.json()["peer"])
    assert seen <= set(allowed[-2:]) and seen
    unknown = requests.get(url, proxies=proxies, headers={"X-ProxyMesh-Country": "JP"}, timeout=10)
    assert unknown.status_code == 400
    assert unknown.headers["X-ProxyMesh-Error"] == "no egress IP in country JP on this proxy"
    for _ in range(5):  # a non-geo proxy ignores the country
        world = requests.get(url, proxies={"http": env.proxy_url("world")},
                             headers={"X-ProxyMesh-Country": "JP"}, timeout=10)
        assert world.status_code == 200
