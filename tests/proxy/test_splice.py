"""The splice(2) CONNECT relay on real loopback sockets, and the transport relay it falls
back to (driven through a real node with splice switched off)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import uvloop

from meshproxy.proxy.server import splice
from meshproxy.proxy.server.splice import SpliceTunnel

from .clients import basic, connect, read_reply
from .conftest import Env

T = TypeVar("T")

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="splice(2) is Linux only")


def run(main: Callable[[], Awaitable[T]]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(asyncio.wait_for(main(), 20))


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(application end, proxy end) of one loopback TCP connection, proxy end non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        app = socket.create_connection(server.getsockname())
        proxy_end, _ = server.accept()
    proxy_end.setblocking(False)
    app.setblocking(False)
    return app, proxy_end


class Relay:
    """A SpliceTunnel between a client app and an upstream app, counting what it moves."""

    def __init__(self) -> None:
        self.client, client_side = tcp_pair()
        self.upstream, upstream_side = tcp_pair()
        self.counted = 0
        self.closed = 0
        self.tunnel = SpliceTunnel(
            asyncio.get_running_loop(), client_side, upstream_side, self._count, self._close
        )
        self.tunnel.start()

    def _count(self, nbytes: int) -> None:
        self.counted += nbytes

    def _close(self) -> None:
        self.closed += 1


async def receive_until_eof(sock: socket.socket, limit: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    parts: list[bytes] = []
    while True:
        piece = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), limit)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


async def send_and_half_close(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)
    sock.shutdown(socket.SHUT_WR)


def test_bytes_pass_intact_both_ways_and_are_counted_exactly() -> None:
    up, down = os.urandom(3_000_001), os.urandom(5_000_003)

    async def main() -> tuple[bytes, bytes, Relay]:
        relay = Relay()
        got_down, got_up, _, _ = await asyncio.gather(
            receive_until_eof(relay.client),
            receive_until_eof(relay.upstream),
            send_and_half_close(relay.client, up),
            send_and_half_close(relay.upstream, down),
        )
        await asyncio.sleep(0.05)
        return got_up, got_down, relay

    got_up, got_down, relay = run(main)
    assert got_up == up and got_down == down
    assert relay.counted == len(up) + len(down)
    assert relay.tunnel.closed and relay.closed == 1  # both sides ended: closed, once


def test_half_close_lets_the_other_direction_go_on() -> None:
    async def main() -> tuple[bytes, bytes, bool, Relay]:
        loop = asyncio.get_running_loop()
        relay = Relay()
        await loop.sock_sendall(relay.client, b"request")
        relay.client.shutdown(socket.SHUT_WR)  # the client is done sending
        request = await receive_until_eof(relay.upstream)  # upstream sees EOF...
        await asyncio.sleep(0.05)
        still_open = not relay.tunnel.closed
        await send_and_half_close(relay.upstream, b"x" * 1_000_000)  # ...and still answers
        reply = await receive_until_eof(relay.client)
        await asyncio.sleep(0.05)
        return request, reply, still_open, relay

    request, reply, still_open, relay = run(main)
    assert request == b"request" and reply == b"x" * 1_000_000
    assert still_open and relay.tunnel.closed
    assert relay.counted == len(request) + len(reply)


def test_a_client_that_does_not_read_stops_the_upstream_side() -> None:
    chunk = b"d" * 65536

    async def main() -> tuple[int, int, bool, int, int]:
        relay = Relay()
        relay.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sent, deadline = 0, time.monotonic() + 5
        while time.monotonic() < deadline:  # fill until the upstream side can send no more
            try:
                sent += relay.upstream.send(chunk)
            except BlockingIOError:
                await asyncio.sleep(0.2)
                try:
                    sent += relay.upstream.send(chunk)
                except BlockingIOError:
                    break
            await asyncio.sleep(0)
        stalled_at = relay.counted
        await asyncio.sleep(0.3)
        blocked = relay.tunnel.pumps[1].blocked
        stalled_after = relay.counted
        relay.upstream.shutdown(socket.SHUT_WR)
        received = len(await receive_until_eof(relay.client))
        return sent, received, blocked, stalled_at, stalled_after

    sent, received, blocked, stalled_at, stalled_after = run(main)
    assert blocked and stalled_at == stalled_after  # nothing moves while the client waits
    assert stalled_at < sent  # the rest waits in the upstream socket, not in the proxy
    assert received == sent  # and everything arrives once the client reads


def test_close_ends_both_connections_at_once() -> None:
    async def main() -> tuple[bytes, bytes, Relay]:
        relay = Relay()
        await asyncio.get_running_loop().sock_sendall(relay.client, b"x" * 100_000)
        await asyncio.sleep(0.05)
        relay.tunnel.abort()
        ends = await asyncio.gather(
            receive_until_eof(relay.client, 2.0), receive_until_eof(relay.upstream, 2.0)
        )
        return ends[0], ends[1], relay

    to_client, to_upstream, relay = run(main)
    assert to_client == b"" and to_upstream == b"x" * 100_000
    assert relay.closed == 1 and relay.counted == 100_000


class HalfCloseOrigin:
    """Reads a request until the client half-closes, then answers `reply` and closes."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.received = b""
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        with self.server, self.server.accept()[0] as conn:
            conn.settimeout(10)
            while piece := conn.recv(65536):
                self.received += piece
            conn.sendall(self.reply)


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "transports"])
def test_tunnel_through_the_node_counts_exactly_and_half_closes(
    env: Env, monkeypatch: pytest.MonkeyPatch, use_splice: bool
) -> None:
    monkeypatch.setattr(splice, "AVAILABLE", use_splice)
    origin = HalfCloseOrigin(os.urandom(3_000_000))
    request = (f"CONNECT {origin.target} HTTP/1.1\r\nHost: {origin.target}\r\n"
               f"Proxy-Authorization: {basic()}\r\n\r\n").encode()  # fmt: skip
    with connect(env.address()) as sock:
        sock.sendall(request)
        established = read_reply(sock, head_only=True)
        assert established.status == 200
        sock.sendall(b"hello origin")
        sock.shutdown(socket.SHUT_WR)  # half-close: the answer must still come back whole
        received = b""
        while piece := sock.recv(1 << 20):
            received += piece
    origin.thread.join(10)
    assert origin.received == b"hello origin" and received == origin.reply
    env.flush()
    _, total = env.usage("alice")
    moved = len(request) + len(established.raw_head) + 4 + len(b"hello origin") + len(received)
    assert total == moved
