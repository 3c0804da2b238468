"""Hostile and broken input: smuggling, bad targets, oversized heads, slow clients."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from support.polling import wait_until

from .clients import basic, connect, is_closed, read_reply
from .conftest import Env

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def send_raw(env: Env, data: bytes) -> tuple[int, bool]:
    """(status, closed afterwards) for raw bytes sent to the proxy."""
    with connect(env.address()) as sock:
        sock.sendall(data)
        reply = read_reply(sock)
        return reply.status, is_closed(sock)


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
        (b"Content-Length: +5\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Transfer-Encoding: gzip\r\n", 501),
        (b"Transfer-Encoding: chunked, chunked\r\n", 400),
    ],
)
def test_smuggling_attempts_are_refused_and_closed(env: Env, framing: bytes, status: int) -> None:
    url = env.origins.raw_url("/frame").encode()
    before = len(env.origins.raw.requests)
    request = (b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nProxy-Authorization: "
               + basic().encode() + b"\r\n" + framing + b"\r\n0\r\n\r\n" + SMUGGLED)
    assert send_raw(env, request) == (status, True)
    assert len(env.origins.raw.requests) == before  # nothing reached the origin


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET http://127.0.0.1:70000/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET https://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
        b"NOT A REQUEST\r\n\r\n",
    ],
)
def test_malformed_requests_get_400(env: Env, request_bytes: bytes) -> None:
    status, closed = send_raw(env, request_bytes)
    assert status == 400 and closed


def test_bad_chunk_sizes_are_refused(env: Env) -> None:
    url = env.origins.raw_url("/frame").encode()
    for size in (b"-5", b"0x5", b"+5", b"1_0"):
        request = (b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nProxy-Authorization: "
                   + basic().encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + size
                   + b"\r\nhello\r\n0\r\n\r\n")
        with connect(env.address()) as sock:
            sock.sendall(request)
            assert read_reply(sock).status == 400
            assert is_closed(sock)


def test_huge_header_block_is_refused(env: Env) -> None:
    filler = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"a" * 1000) for i in range(100))
    status, closed = send_raw(
        env, b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n"
    )
    assert status == 431 and closed


def test_slow_heads_and_bodies_time_out(start_env: Callable[..., Env]) -> None:
    env = start_env(header_timeout=1.0)
    env.account("alice")
    env.sync()
    with connect(env.address()) as slow_head:
        slow_head.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        reply = read_reply(slow_head)
        assert reply.status == 408 and time.monotonic() - started < 3
    with connect(env.address()) as slow_body:
        slow_body.sendall((f"POST {env.origins.url('/upload')} HTTP/1.1\r\nHost: x\r\n"
                           f"Proxy-Authorization: {basic()}\r\nContent-Length: 100\r\n\r\n"
                           "only part").encode())
        assert is_closed(slow_body, timeout=5)


def test_idle_connections_are_closed(start_env: Callable[..., Env]) -> None:
    env = start_env(idle_timeout=0.5, header_timeout=0.5)
    env.account("alice")
    env.sync()
    with connect(env.address()) as silent:
        assert is_closed(silent, timeout=3)
    with connect(env.address()) as kept:
        kept.sendall((f"GET {env.origins.url('/echo')} HTTP/1.1\r\nHost: x\r\n"
                      f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
        assert read_reply(kept).status == 200
        assert is_closed(kept, timeout=3)


def test_a_client_that_stops_reading_does_not_grow_the_proxy(env: Env) -> None:
    """Back-pressure reaches the origin: a 1 GB response to a non-reading client is held
    back, not buffered."""
    with connect(env.address()) as sock:
        sock.sendall((f"GET {env.origins.url('/bytes/1000000000')} HTTP/1.1\r\nHost: x\r\n"
                      f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
        alice = env.node.directory.by_username["alice"]
        counted: list[int] = []

        def held_back() -> bool:  # no byte more for the last 0.5 s (25 polls)
            counted.append(alice.total_bytes)
            return len(counted) > 25 and 0 < counted[-26] == counted[-1]

        wait_until(held_back, 10, f"still moving after {counted[-1:]} bytes")
        assert counted[-1] < 50_000_000  # socket buffers plus one high-water mark, not 1 GB
