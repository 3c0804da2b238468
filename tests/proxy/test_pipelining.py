"""Requests pipelined behind a decided close (RFC 9112 §9.6): nothing after it is admitted
or sent upstream, and every byte that did reach an origin is charged.

The `world` proxy has one egress, so the connection a warm-up request leaves in the pool
is the one a pipelined request would be sent over at once (no connect to wait for)."""

from __future__ import annotations

import time

import pytest

from .clients import basic, connect, is_closed, read_reply
from .conftest import Env

AUTH = b"Proxy-Authorization: " + basic().encode() + b"\r\n"
UPLOAD = 60_000


def _warm(env: Env, url: str) -> None:
    """A pooled connection to `url`'s origin from the `world` egress (and alice's
    credentials verified, so the next request is admitted at once)."""
    with connect(env.address("world")) as sock:
        sock.sendall(b"GET " + url.encode() + b" HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n")
        assert read_reply(sock).status in (200, 404)


@pytest.mark.parametrize(
    "refused",
    [
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
        b"POST http://127.0.0.1/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n",
        b"GET http://127.0.0.1/ HTTP/2.0\r\nHost: a\r\n",
    ],
    ids=["two-hosts", "identity-chunked", "gzip", "version"],
)
def test_nothing_pipelined_behind_a_refusal_reaches_the_origin(env: Env, refused: bytes) -> None:
    path = b"/after-close-%d" % len(refused)
    upload = (b"POST " + env.origins.raw_url(path.decode()).encode() + b" HTTP/1.1\r\nHost: x\r\n"
              + AUTH + b"Content-Length: %d\r\n\r\n" % UPLOAD + b"u" * UPLOAD)
    for _ in range(5):
        _warm(env, env.origins.raw_url("/warm"))
        with connect(env.address("world")) as sock:
            sock.sendall(refused + AUTH + b"\r\n" + upload)
            assert read_reply(sock).status in (400, 501, 505)
            assert is_closed(sock)
    _warm(env, env.origins.raw_url("/warm"))  # the origin has seen everything sent before this
    assert not [r for r in env.origins.raw.requests if path in r]


def test_bytes_that_reached_the_origin_are_charged_when_a_malformed_request_follows(
    env: Env,
) -> None:
    """An upload admitted and forwarded, the end of its body and garbage behind it in a
    later read: the 400 closes the connection, and the upload's bytes, which the origin
    got, are charged (the garbage's too: they came in one read)."""
    upload = (b"POST " + env.origins.url("/upload").encode() + b" HTTP/1.1\r\nHost: x\r\n"
              + AUTH + b"Content-Length: %d\r\n\r\n" % UPLOAD + b"u" * UPLOAD)
    _warm(env, env.origins.url("/echo"))
    env.flush()
    _, before = env.usage("alice")
    with connect(env.address("world")) as sock:
        sock.sendall(upload[:-UPLOAD // 2])
        time.sleep(0.3)  # admitted and under way upstream
        sock.sendall(upload[-UPLOAD // 2 :] + b"NOT A REQUEST\r\n\r\n")
        reply = read_reply(sock)
        assert reply.status in (200, 400)
        assert is_closed(sock)
    env.flush()
    _, after = env.usage("alice")
    assert after - before >= len(upload), (after - before, len(upload))
