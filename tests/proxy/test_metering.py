"""Bytes a client moves vs the usage recorded, and quotas enforced on open connections."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.units import GB

from .clients import basic, connect, curl, read_reply
from .conftest import Env


def close_to(measured: int, recorded: int) -> bool:
    return abs(measured - recorded) <= measured * 0.001


def curl_bytes(*args: str) -> int:
    """Every byte curl moved on its connection to the proxy (plain HTTP, known lengths)."""
    result = curl("-o", "/dev/null", "-w",
                  "%{size_request} %{size_upload} %{size_header} %{size_download}", *args)
    assert result.returncode == 0, result.stderr
    return sum(int(n) for n in result.stdout.split())


def test_plain_http_usage_matches_the_client_both_ways(env: Env, tmp_path: Path) -> None:
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"u" * 3_000_000)
    moved = curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/5000000"))
    moved += curl_bytes("-x", env.proxy_url(), "--data-binary", f"@{upload}",
                        env.origins.url("/upload"))
    # An exact count from a raw socket: several requests on one connection.
    with connect(env.address()) as sock:
        sent = received = 0
        for n in (1, 1000, 2_000_000):
            request = (f"GET {env.origins.url(f'/bytes/{n}')} HTTP/1.1\r\nHost: x\r\n"
                       f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
            sock.sendall(request)
            reply = read_reply(sock)
            sent += len(request)
            received += len(reply.raw_head) + 4 + len(reply.body)
    moved += sent + received
    env.flush()
    monthly, total = env.usage("alice")
    assert close_to(moved, total) and monthly == total, (moved, total)
    assert total > 10_000_000


def test_tunnel_usage_matches_the_client_both_ways(env: Env) -> None:
    target = f"127.0.0.1:{env.origins.http}"
    with connect(env.address()) as sock:
        connect_request = (f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                           f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
        sock.sendall(connect_request)
        established = read_reply(sock, head_only=True)
        sent, received = len(connect_request), len(established.raw_head) + 4
        body = b"t" * 2_500_000
        upload = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        sock.sendall(upload + body)
        reply = read_reply(sock)
        sent += len(upload) + len(body)
        received += len(reply.raw_head) + 4 + len(reply.body)
        download = b"GET /bytes/4000000 HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(download)
        reply = read_reply(sock)
        sent += len(download)
        received += len(reply.raw_head) + 4 + len(reply.body)
        assert len(reply.body) == 4_000_000
    env.flush()
    _, total = env.usage("alice")
    assert close_to(sent + received, total), (sent + received, total)


def test_sub_account_usage_counts_for_the_parent(env: Env) -> None:
    parent = env.store.accounts.get("alice")
    assert parent is not None
    env.account("sub_2", parent=parent)
    env.sync()
    moved = curl_bytes("-x", env.proxy_url(user="sub_2"), env.origins.url("/bytes/1000000"))
    env.flush()
    assert close_to(moved, env.usage("sub_2")[1])
    assert env.usage("alice")[1] == env.usage("sub_2")[1]


def _preload(env: Env, username: str, nbytes: int) -> None:
    record = env.store.accounts.get(username)
    assert record is not None
    env.store.usage.record([UsageDelta(record.id, record.parent_id, nbytes)],
                           datetime.now(UTC).date())


def _download_until_closed(sock: object, crossing: int) -> tuple[int, float]:
    """Read slowly; returns (bytes read, seconds from passing `crossing` to the close)."""
    import socket as socket_module

    assert isinstance(sock, socket_module.socket)
    sock.settimeout(10)
    got, crossed_at = 0, None
    for _ in range(100_000):
        try:
            piece = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not piece:
            break
        got += len(piece)
        if crossed_at is None and got >= crossing:
            crossed_at = time.monotonic()
        time.sleep(0.005)  # about 100-200 MB/s: the limit is crossed mid-transfer
    assert crossed_at is not None, got
    return got, time.monotonic() - crossed_at


def test_monthly_limit_crossed_mid_download_closes_it_and_then_509(env: Env) -> None:
    _preload(env, "alice", GB - 20_000_000)
    env.store.accounts.update("alice", monthly_limit_gb=1)
    env.sync()
    with connect(env.address()) as sock:
        sock.sendall((f"GET {env.origins.url('/bytes/1000000000')} HTTP/1.1\r\nHost: x\r\n"
                      f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
        got, seconds = _download_until_closed(sock, 19_990_000)  # the heads count too
    assert got < 500_000_000 and seconds < 2.0
    refused = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()}, timeout=10)
    assert refused.status_code == 509
    assert "monthly bandwidth limit of the account" in refused.headers["X-ProxyMesh-Error"]


def test_parent_total_limit_closes_a_sub_accounts_tunnel(env: Env) -> None:
    parent = env.store.accounts.get("alice")
    assert parent is not None
    env.account("sub_3", parent=parent)
    _preload(env, "alice", GB - 20_000_000)
    env.store.accounts.update("alice", total_limit_gb=1)
    env.sync()
    target = f"127.0.0.1:{env.origins.http}"
    with connect(env.address()) as sock:
        sock.sendall((f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                      f"Proxy-Authorization: {basic('sub_3')}\r\n\r\n").encode())
        assert read_reply(sock, head_only=True).status == 200
        sock.sendall(b"GET /bytes/1000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        got, seconds = _download_until_closed(sock, 19_990_000)  # the heads count too
    assert got < 500_000_000 and seconds < 2.0
    refused = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url(user="sub_3")},
                           timeout=10)
    assert refused.status_code == 509 and "parent" in refused.headers["X-ProxyMesh-Error"]
    env.store.accounts.update("alice", total_limit_gb=2)
    env.sync()
    assert requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url(user="sub_3")},
                        timeout=10).status_code == 200


def test_idle_keep_alive_connection_is_closed_when_over_quota(env: Env) -> None:
    with connect(env.address()) as sock:
        sock.sendall((f"GET {env.origins.url('/echo')} HTTP/1.1\r\nHost: x\r\n"
                      f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
        assert read_reply(sock).status == 200
        _preload(env, "alice", GB)
        env.store.accounts.update("alice", monthly_limit_gb=1)
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 2.0
