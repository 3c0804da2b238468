"""A sender that waits for the proxy's ACKs gets them at once, not 40 ms later: an origin
answering (plain, or through a CONNECT tunnel), a client uploading.

Linux delays an ACK (40 ms and more) on a connection it sees as request/response, which
an upstream connection is: the proxy sent a request, the origin answers. An origin that
has sent all its socket buffer holds the rest of the response until an ACK frees it, so
every delayed ACK is a 40 ms stall in the middle of the response. On loopback (a 64 KiB
MSS) it took the 64 KiB p99 of `bench.proxies` from ~4 to ~36 ms; here an origin with a
small send buffer makes it happen on every response.

The sender counts its stalls itself: each time a send had to wait, how long the wait
was. A delayed ACK is a wait of at least the kernel's minimum delay (40 ms); an ACK sent
at once is one of microseconds. So the assertions are about the kind of wait, with a
margin of 20x either way, not about how fast the proxy is.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from meshproxy.proxy.server import splice
from meshproxy.proxy.server.acks import acks

from .clients import basic, read_reply
from .conftest import Env

SIZE = 256 * 1024
DELAYED_ACK = 0.040  # Linux's minimum delayed-ACK timeout (TCP_DELACK_MIN)
REQUESTS = 4


def send_counting_waits(sock: socket.socket, data: bytes, waits: list[float]) -> None:
    """sendall(data), noting in `waits` how long each wait for room in the send buffer
    (for the peer's ACKs) took."""
    sock.setblocking(False)
    pending = memoryview(data)
    while pending:
        try:
            pending = pending[sock.send(pending) :]
        except BlockingIOError:
            started = time.monotonic()
            select.select([], [sock], [], 10)
            waits.append(time.monotonic() - started)
    sock.setblocking(True)


def assert_no_delayed_acks(waits: list[float]) -> None:
    assert waits, "the sender never had to wait: the test does not test anything"
    stalls = [wait for wait in waits if wait >= DELAYED_ACK / 2]
    assert not stalls, f"{len(stalls)} of {len(waits)} sends waited for a delayed ACK"


@dataclass
class StallingOrigin:
    """Answers every request on a connection with SIZE bytes through a send buffer of a
    few KiB, and notes how long each send waited for room (for the peer's ACKs)."""

    listener: socket.socket = field(default_factory=socket.socket)
    waits: list[float] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def start(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # the listener closed: the test is over
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE
        with conn, contextlib.suppress(OSError):
            while True:
                if not conn.recv(65536):
                    return
                send_counting_waits(conn, head + b"x" * SIZE, self.waits)


@pytest.fixture
def stalling_origin() -> Iterator[StallingOrigin]:
    origin = StallingOrigin()
    origin.start()
    yield origin
    origin.listener.close()


def test_an_origin_waiting_for_acks_is_not_held_by_delayed_acks(
    env: Env, stalling_origin: StallingOrigin
) -> None:
    # One connection to the proxy, one egress (`world`): the upstream connection is
    # reused, and after its first response Linux treats it as request/response.
    with socket.create_connection(env.address("world"), timeout=10) as sock:
        for _ in range(REQUESTS):
            sock.sendall(
                f"GET http://127.0.0.1:{stalling_origin.port}/big HTTP/1.1\r\nHost: x\r\n"
                f"Proxy-Authorization: {basic()}\r\n\r\n".encode()
            )
            reply = read_reply(sock)
            assert reply.status == 200
            assert len(reply.body) == SIZE
    assert_no_delayed_acks(stalling_origin.waits)


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "transport relay"])
def test_the_same_through_a_connect_tunnel(
    env: Env, stalling_origin: StallingOrigin, use_splice: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if use_splice and not splice.AVAILABLE:
        pytest.skip("splice(2) is Linux only")
    monkeypatch.setattr(splice, "AVAILABLE", use_splice)
    with socket.create_connection(env.address("world"), timeout=10) as sock:
        sock.sendall(
            f"CONNECT 127.0.0.1:{stalling_origin.port} HTTP/1.1\r\nHost: x\r\n"
            f"Proxy-Authorization: {basic()}\r\n\r\n".encode()
        )
        assert read_reply(sock, head_only=True).status == 200
        for _ in range(REQUESTS):
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_reply(sock)
            assert reply.status == 200
            assert len(reply.body) == SIZE
    assert_no_delayed_acks(stalling_origin.waits)


def test_a_client_uploading_is_not_held_by_delayed_acks(env: Env) -> None:
    waits: list[float] = []
    with socket.create_connection(env.address("world"), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        for _ in range(REQUESTS):
            head = (f"POST {env.origins.url('/upload')} HTTP/1.1\r\nHost: x\r\n"
                    f"Proxy-Authorization: {basic()}\r\nContent-Length: {SIZE}\r\n\r\n")
            send_counting_waits(sock, head.encode() + b"x" * SIZE, waits)
            reply = read_reply(sock)
            assert reply.status == 200
    assert_no_delayed_acks(waits)


def test_only_tcp_sockets_are_acked_on() -> None:
    """An https:// upstream's relay is a Unix socket pair (dial.py): TCP_QUICKACK there
    would fail every read."""
    pair = socket.socketpair()
    with pair[0], pair[1], socket.socket() as tcp:
        assert not acks(pair[0])
        assert acks(tcp) == bool(getattr(socket, "TCP_QUICKACK", 0))
