"""Clients that read slowly, or pause: the origin is judged only while the proxy reads
from it (`upstream_timeout`), the client by its own progress (`send_timeout`).

The download is larger than every kernel buffer on its way (a small receive buffer on
the client), so the proxy has to stop reading the origin while the client does not read.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from meshproxy.proxy.server.connection import ClientConnection
from support.polling import wait_until

from .clients import basic
from .conftest import Env

SIZE = 48 << 20


def _download(env: Env) -> socket.socket:
    """A client with a small receive buffer that has asked for SIZE bytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect(env.address())
    sock.sendall(f"GET {env.origins.url(f'/bytes/{SIZE}')} HTTP/1.1\r\nHost: x\r\n"
                 f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
    return sock


def _read_all(sock: socket.socket) -> tuple[int, int]:
    """(status, body bytes) read until the end of the body or of the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return 0, 0
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    received = len(body)
    try:
        while received < SIZE:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            received += len(piece)
    except ConnectionResetError:
        pass
    return int(head.split()[1]), received


def _warm(env: Env) -> None:
    """alice's credentials verified (no argon2 in the timed part)."""
    with _download(env) as sock:
        sock.recv(1)


def test_a_client_that_pauses_longer_than_the_upstream_timeout_gets_its_download(
    start_env: Callable[..., Env],
) -> None:
    """The proxy stops reading the origin while the client does not drain: that silence
    is not the origin's, so a 2 s pause under a 0.5 s upstream_timeout cuts nothing."""
    env = start_env(upstream_timeout=0.5, send_timeout=5.0)
    env.account("alice")
    env.sync()
    _warm(env)
    with _download(env) as sock:
        time.sleep(2.0)
        assert _read_all(sock) == (200, SIZE)


def test_a_client_that_stops_reading_is_cut_at_the_send_timeout(
    start_env: Callable[..., Env],
) -> None:
    """No progress at all for send_timeout (here 1 s): the connection is dropped (as
    nginx's send_timeout), while one that pauses for less gets everything. (The origin's
    rule, 30 s here, plays no part.)"""
    env = start_env(upstream_timeout=30.0, send_timeout=1.0)
    env.account("alice")
    env.sync()
    _warm(env)
    with _download(env) as stuck, _download(env) as paused:
        time.sleep(0.6)
        assert _read_all(paused) == (200, SIZE)
        time.sleep(2.5)  # stuck has not read for 3.1 s
        status, received = _read_all(stuck)
        assert status == 200 and received < SIZE
    connections = env.node.services.connections
    wait_until(lambda: not connections, 3, lambda: f"still open: {connections}", 0.05)


def test_a_client_that_pipelines_and_does_not_read_holds_one_read_at_a_time(
    start_env: Callable[..., Env],
) -> None:
    """200 pipelined requests for 60 KB each, none of it read: each response fits one
    upstream read, so each exchange completes at once and the next one starts while the
    client still has a backlog. Its upstream must not be read until the client drains,
    or the proxy would hold all 12 MB (a client sending 100 bytes a request could make
    it hold 64 KiB for each)."""
    env = start_env()
    env.account("alice")
    env.sync()
    _warm(env)
    request = (f"GET {env.origins.url('/bytes/60000')} HTTP/1.1\r\nHost: x\r\n"
               f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        sock.connect(env.address())
        sock.sendall(request * 200)
        time.sleep(2.0)

        async def backlog() -> int:
            return max((c.transport.get_write_buffer_size()
                        for c in env.node.services.connections
                        if isinstance(c, ClientConnection) and c.transport is not None),
                       default=0)

        held = env.thread.run(backlog())
    assert held <= 256 * 1024, held
