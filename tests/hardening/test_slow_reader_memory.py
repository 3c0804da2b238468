"""Slow readers against a `meshproxy proxy` subprocess: each costs the node at most its
bounded buffers (64 KiB of user space and its connections' objects), and the memory comes
back when they leave. Their clients keep small receive buffers, so what the node holds is
what it read from the origin and could not pass on."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from bench.hardening import Node, credentials
from bench.hardening import Origins as LoadOrigins

from support.polling import eventually

READERS = 200
KIB = 1  # the unit of /proc/<pid>/status
MIB = 1024 * KIB


def _settled_rss(node: Node, within: float = 6.0) -> int:
    """The node's RSS once it stops moving (two samples 0.5 s apart within 256 KiB; the
    last sample if it does not within `within` seconds)."""
    samples: list[int] = []

    def steady() -> bool:
        samples.append(node.rss_kib())
        return len(samples) > 1 and abs(samples[-1] - samples[-2]) < 256 * KIB

    eventually(steady, within, interval=0.5)
    return samples[-1]


def _slow_reader(node: Node, origins: LoadOrigins, kind: str) -> socket.socket:
    """A plain download, or one inside a tunnel whose first bytes came with the CONNECT
    (as a TLS client's hello often does: the tunnel is then relayed over transports, not
    spliced)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(node.address)
    if kind == "plain":
        sock.sendall(b"GET http://127.0.0.1:%d/bytes/1000000000 HTTP/1.1\r\nHost: x\r\n%s"
                     b"\r\n" % (origins.http, credentials()))
    else:
        sock.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
                     b"GET /bytes/1000000000 HTTP/1.1\r\nHost: x\r\n\r\n"
                     % (origins.http, credentials()))
    return sock


@pytest.mark.parametrize("kind", ["plain", "tunnel"])
def test_slow_readers_cost_bounded_buffers_and_their_memory_returns(
    node_process: Callable[..., Node], load_origins: LoadOrigins, kind: str
) -> None:
    node = node_process()
    for sock in [_slow_reader(node, load_origins, kind) for _ in range(4)]:  # warm
        sock.close()
    before = _settled_rss(node)
    readers = [_slow_reader(node, load_origins, kind) for _ in range(READERS)]
    try:
        held = _settled_rss(node)
        for sock in readers:
            sock.recv(1024)  # each is under way (and a slow reader, not a dead one)
    finally:
        for sock in readers:
            sock.close()
    after = _settled_rss(node)
    per_reader = (held - before) / READERS
    assert per_reader <= 96 * KIB, (before, held, after, per_reader)  # 64 KiB + the objects
    assert after - before <= max(8 * MIB, (held - before) // 4), (before, held, after)
    assert node.stop() == 0
