"""The access log from outside: requests of every outcome through a real node, then its
JSON lines read back and compared with what was sent and received, bytes included (equal
to what the meter charged, or nothing charged for a refusal before admission)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from proxy.clients import basic, connect, curl
from proxy.conftest import EGRESS, Env, LoopThread, Origins, proxy_settings
from proxy.listeners import socks_env, start_listeners
from proxy.test_socks import http_get, socks_connect

__all__ = ["socks_env", "start_listeners"]  # fixtures

from meshproxy.cli.logs import logs
from meshproxy.config import Settings
from meshproxy.domain.accounts import UsageDelta
from meshproxy.ops.metrics import registry_for, render
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store
from support.polling import wait_until

GB = 1024**3


class Lines:
    """The node's access log, read as it grows."""

    def __init__(self, node: ProxyNode) -> None:
        self.path = node.settings.data_dir / node.settings.access_log.path
        self.seen = 0

    def next(self, count: int = 1) -> list[dict[str, Any]]:
        """The next `count` lines (the writer thread writes them within its interval)."""
        lines: list[str] = []

        def written() -> bool:
            nonlocal lines
            lines = self.path.read_text().splitlines() if self.path.exists() else []
            return len(lines) >= self.seen + count

        wait_until(written, 10, f"{count} more lines expected in {self.path}, seen {self.seen}")
        found = [json.loads(line) for line in lines[self.seen : self.seen + count]]
        self.seen += count
        return found


class Charged:
    """What the meter counted for the `open` proxy since the last call."""

    def __init__(self, env: Env) -> None:
        self.counted = env.node.bytes_by_proxy["open"]
        self.last = self.counted.nbytes

    def since(self) -> int:
        now = self.counted.nbytes
        delta, self.last = now - self.last, now
        return delta


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_every_outcome_is_logged_with_its_bytes(env: Env) -> None:
    lines, charged = Lines(env.node), Charged(env)
    host, port = env.address()
    proxies = {"http": env.proxy_url(), "https": env.proxy_url()}
    began = time.time()

    # 200, relayed: egress as the response says, bytes as the meter charged
    ok = requests.get(env.origins.url("/bytes/5000"), proxies=proxies, timeout=10)
    assert ok.status_code == 200 and len(ok.content) == 5000
    (line,) = lines.next()
    assert line["proxy"] == "open" and line["account"] == "alice" and line["parent"] is None
    assert line["client"] == "127.0.0.1" and line["egress"] == ok.headers["X-ProxyMesh-IP"]
    assert line["egress"] in EGRESS and line["server"] == "127.0.0.1"
    assert line["method"] == "GET" and line["target"] == f"127.0.0.1:{env.origins.http}"
    assert "path" not in line and "/bytes/" not in json.dumps(line)  # host:port only
    assert line["status"] == 200 and line["outcome"] == "relayed" and line["error"] is None
    assert line["bytes_out"] > 5000 and line["bytes_in"] > 0
    assert line["bytes_in"] + line["bytes_out"] == charged.since()
    assert began <= datetime.fromisoformat(line["time"]).timestamp() <= time.time() + 0.001
    assert line["duration_ms"] >= 0 and line["node"]

    # 407, answered by the proxy from a raw client: bytes exactly as on the wire, no charge
    request = (
        f"GET {env.origins.url('/echo')} HTTP/1.1\r\nHost: x\r\n"
        "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\nConnection: close\r\n\r\n"
    ).encode()
    with connect((host, port)) as sock:
        sock.sendall(request)
        sock.settimeout(10)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))  # until the proxy closes
    assert answer.startswith(b"HTTP/1.1 407 ")
    (line,) = lines.next()
    assert line["status"] == 407 and line["outcome"] == "answered" and line["account"] is None
    assert f"X-ProxyMesh-Error: {line['error']}\r\n".encode() in answer
    assert line["bytes_in"] == len(request) and line["bytes_out"] == len(answer)
    assert line["egress"] is None and line["server"] is None
    assert "wrong" not in json.dumps(line) and "YWxpY2U6d3Jvbmc" not in json.dumps(line)
    assert charged.since() == 0

    # 403, a destination the policy refuses (nothing is sent to it)
    refused = curl("-x", env.proxy_url(), "http://10.255.255.1:8080/")
    assert refused.returncode == 0
    (line,) = lines.next()
    assert line["status"] == 403 and line["outcome"] == "answered"
    assert line["target"] == "10.255.255.1:8080" and "not allowed" in line["error"]
    assert line["account"] == "alice" and line["server"] is None
    assert line["bytes_in"] + line["bytes_out"] == charged.since()

    # 502, an origin port nobody listens on: the egress chosen is logged though unused
    closed = _closed_port()
    failed = requests.get(f"http://127.0.0.1:{closed}/", proxies=proxies, timeout=10)
    assert failed.status_code == 502
    (line,) = lines.next()
    assert line["status"] == 502 and line["outcome"] == "answered"
    assert line["error"] == failed.headers["X-ProxyMesh-Error"] and "refused" in line["error"]
    assert line["egress"] in EGRESS and line["server"] == "127.0.0.1"
    assert line["bytes_in"] + line["bytes_out"] == charged.since()

    # a CONNECT tunnel (curl, HTTPS inside): one line when it closes, every byte of it
    tunnel = curl(
        "-x", env.proxy_url(), "--cacert", str(env.origins.ca_file), "-o", "/dev/null",
        "-w", "%{http_code}", f"https://127.0.0.1:{env.origins.https}/bytes/20000",
    )
    assert tunnel.stdout == b"200", tunnel.stderr
    (line,) = lines.next()
    assert line["method"] == "CONNECT" and line["target"] == f"127.0.0.1:{env.origins.https}"
    assert line["status"] == 200 and line["outcome"] == "tunnel" and line["egress"] in EGRESS
    assert line["bytes_out"] > 20000 and line["bytes_in"] > 0
    assert line["bytes_in"] + line["bytes_out"] == charged.since()

    # the abuse question from this file: who used that egress when the tunnel closed?
    asked = CliRunner().invoke(logs, [
        "--egress", line["egress"], "--at", line["time"], "--window", "0",
        "--file", str(lines.path), "--json",
    ])
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.output) == [line]
    time.sleep(0.5)  # two writer intervals: a second line for any of them would be there
    assert len(lines.path.read_text().splitlines()) == lines.seen == 5


def test_sub_account_509_and_aborted(env: Env) -> None:
    alice = env.store.accounts.get("alice")
    assert alice is not None
    sub = env.account("sub_a", parent=alice)
    env.account("capped", monthly_limit_gb=1)
    capped = env.store.accounts.get("capped")
    assert capped is not None
    env.store.usage.record([UsageDelta(capped.id, None, GB)], datetime.now(UTC).date())
    env.sync()
    lines, charged = Lines(env.node), Charged(env)

    ok = requests.get(
        env.origins.url("/echo"), proxies={"http": env.proxy_url(user=sub.username)}, timeout=10
    )
    assert ok.status_code == 200
    (line,) = lines.next()
    assert line["account"] == "sub_a" and line["parent"] == "alice"
    assert line["bytes_in"] + line["bytes_out"] == charged.since()

    over = requests.get(
        env.origins.url("/echo"), proxies={"http": env.proxy_url(user="capped")}, timeout=10
    )
    assert over.status_code == 509
    (line,) = lines.next()
    assert line["status"] == 509 and line["account"] == "capped" and line["outcome"] == "answered"
    assert line["error"] == over.headers["X-ProxyMesh-Error"]
    assert charged.since() == 0  # refused before admission: nothing charged

    # a client that leaves mid-response: aborted, with the origin's status and what it got
    with connect(env.address()) as sock:
        sock.sendall(
            (f"GET {env.origins.url('/bytes/50000000')} HTTP/1.1\r\nHost: x\r\n"
             f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
        )
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    (line,) = lines.next()
    assert line["outcome"] == "aborted" and line["status"] == 200
    assert 0 < line["bytes_out"] < 50_000_000
    assert line["bytes_in"] + line["bytes_out"] == charged.since()


def test_a_full_disk_drops_lines_counts_them_and_the_proxy_serves(
    make_settings: Callable[..., Settings],
    store: Store,
    proxy_thread: LoopThread,
    origins: Origins,
) -> None:
    settings = proxy_settings(make_settings)
    settings.access_log.path = Path("/dev/full")  # every write: ENOSPC
    settings.access_log.interval = 0.01
    node = ProxyNode(settings, store)
    proxy_thread.run(node.start())
    try:
        env = Env(node, store, proxy_thread, origins)
        env.account("alice")
        env.sync()
        for _ in range(5):
            ok = requests.get(origins.url("/echo"), proxies={"http": env.proxy_url()}, timeout=10)
            assert ok.status_code == 200
        access_log = node.access_log
        assert access_log is not None
        wait_until(lambda: access_log.dropped >= 5, 10, lambda: access_log.dropped)
        assert access_log.dropped == 5 and access_log.written == 0

        async def scrape() -> str:
            status = NodeStatus(store=store, api=False, proxy_node=node)
            return render(registry_for(status, asyncio.get_running_loop())).decode()

        assert "meshproxy_access_log_dropped_total 5.0" in proxy_thread.run(scrape())
    finally:
        proxy_thread.run(node.stop(1.0))


def test_socks5_connections_are_logged(socks_env: Env) -> None:
    """One line per SOCKS5 connection: method SOCKS5, the HTTP proxy's status for the same
    decision (200: the tunnel opened), its bytes as the meter charged them."""
    env = socks_env
    lines, charged = Lines(env.node), Charged(env)
    target = ("127.0.0.1", env.origins.http)
    sock, reply = socks_connect(env, target)
    assert reply[:2] == b"\x05\x00"
    with sock:
        body = http_get(sock, "/bytes/30000")
    assert len(body) > 30000
    (line,) = lines.next()
    assert line["method"] == "SOCKS5" and line["outcome"] == "tunnel" and line["status"] == 200
    assert line["target"] == f"127.0.0.1:{env.origins.http}" and line["account"] == "alice"
    assert line["egress"] == socket.inet_ntoa(reply[4:8]) and line["server"] == "127.0.0.1"
    assert line["bytes_out"] > 30000
    assert line["bytes_in"] + line["bytes_out"] == charged.since()

    sock, answer = socks_connect(env, target, password="wrong")
    sock.close()
    assert answer == b"\x01\x01"
    (line,) = lines.next()
    assert line["status"] == 407 and line["outcome"] == "answered" and line["account"] is None
    assert line["target"] is None and "wrong" not in json.dumps(line)

    for destination, status, why in (
        (("10.255.255.1", 8080), 403, "not allowed"),
        (("127.0.0.1", _closed_port()), 502, "SOCKS reply 5"),
    ):
        sock, reply = socks_connect(env, destination)
        sock.close()
        assert reply[1] != 0
        (line,) = lines.next()
        assert line["status"] == status and why in line["error"], line
        assert line["target"] == f"{destination[0]}:{destination[1]}"
    assert charged.since() == 0  # refusals are charged to nobody
