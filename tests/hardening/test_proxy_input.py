"""Hostile HTTP at a real ProxyNode, sent as raw bytes: each gets a clear 4xx/5xx answer
or a clean close, nothing reaches the origin that the proxy did not parse, and the node
lets go of every connection. (tests/proxy/test_hostile.py has the first cases; these are
the rest.)"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable

import pytest

from proxy.clients import basic, read_reply
from support.polling import wait_until
from support.proxy_env import echo_json

from .conftest import Env
from .raw import basic_raw, exchange, fresh_source, open_from, own_fds, settle

AUTH = b"Proxy-Authorization: " + basic().encode() + b"\r\n"


def _echo(env: Env) -> bytes:
    return env.origins.url("/echo").encode()


# ---- request lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"GET\r\n\r\n",
        b"GET http://127.0.0.1/\r\n\r\n",  # HTTP/0.9
        b"GET http://127.0.0.1/ HTTP/9.9\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1 extra\r\n\r\n",
        b"G\x00T http://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1/\x7f HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1/ \x00HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # TLS to a plain port
        b"GET http://[::1/ HTTP/1.1\r\n\r\n",
        b"GET http://[::1]x/ HTTP/1.1\r\n\r\n",
        b"GET http://a b/ HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1:0/ HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1:/ HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1:-1/ HTTP/1.1\r\n\r\n",
        b"GET http://127.0.0.1:99999999999999999999/ HTTP/1.1\r\n\r\n",
        b"GET http://:80/ HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"GET http://\xff\xfe/ HTTP/1.1\r\n\r\n",
        b"GET http://" + b"a" * 300 + b"/ HTTP/1.1\r\n\r\n",
        b"GET ftp://127.0.0.1/ HTTP/1.1\r\n\r\n",
        b"GET *:80 HTTP/1.1\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # an HTTP/2 preface
    ],
)
def test_malformed_request_lines_get_400_and_close(env: Env, line: bytes) -> None:
    outcome = exchange(env.address(), line)
    assert outcome.status in (400, 505, None) and outcome.closed, outcome
    settle(env)


@pytest.mark.parametrize("line", [b"GET http://127.0.0.1/\r\n", b"GET http://127.0.0.1/\n"])
def test_a_bare_http09_line_is_answered_at_once(env: Env, line: bytes) -> None:
    """An HTTP/0.9 request line has no head to wait for: 400 (or a close) at once, not
    the 408 of a head that stopped coming (header_timeout, 30 s; the wait here is 10)."""
    outcome = exchange(env.address(), line, timeout=10)
    assert outcome.status in (400, None) and outcome.closed, outcome
    settle(env)


def test_absurd_host_headers_never_reach_the_origin(env: Env) -> None:
    """The origin sees the target's authority, whatever Host the client sent."""
    for host in (b"", b"evil.example", b"a" * 8000, b"127.0.0.1:1 , x", b"[::1]:99999"):
        outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: " + host
                           + b"\r\n" + AUTH + b"\r\n")
        assert outcome.status == 200, host
        seen = [v for k, v in echo_json(outcome.body)["headers"] if k.lower() == "host"]
        assert seen == [f"127.0.0.1:{env.origins.http}"]
    outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: a\x01\r\n\r\n")
    assert outcome.status == 400 and outcome.closed  # a control character in a value
    settle(env)


def test_missing_host_is_served_from_the_absolute_target(env: Env) -> None:
    outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\n" + AUTH + b"\r\n")
    assert outcome.status == 200
    assert [f"127.0.0.1:{env.origins.http}"] == [
        v for k, v in echo_json(outcome.body)["headers"] if k.lower() == "host"]


def test_duplicate_host_headers_are_refused(env: Env) -> None:
    """RFC 9112 §3.2: more than one Host is a 400 (two origins could read two hosts)."""
    outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
                       + AUTH + b"\r\n")
    assert outcome.status == 400 and outcome.closed


# ---- size limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"X-Long: " + b"a" * 70_000 + b"\r\n",  # one line over the 64 KiB head limit
        b"".join(b"X-%d: v\r\n" % i for i in range(10_000)),  # many small lines
        b"Cookie: " + b"c" * 40_000 + b"\r\nX-More: " + b"m" * 30_000 + b"\r\n",
    ],
)
def test_header_lines_and_blocks_over_the_limit_get_431(env: Env, head: bytes) -> None:
    before = len(env.origins.raw.requests)
    outcome = exchange(env.address(), b"GET " + env.origins.raw_url("/x").encode()
                       + b" HTTP/1.1\r\nHost: x\r\n" + AUTH + head + b"\r\n")
    assert outcome.status == 431 and outcome.closed
    assert len(env.origins.raw.requests) == before
    settle(env)


def test_a_url_over_the_limit_gets_431(env: Env) -> None:
    outcome = exchange(env.address(), b"GET " + _echo(env) + b"?" + b"q" * 70_000
                       + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert outcome.status == 431 and outcome.closed


def test_a_head_just_under_the_limit_is_served(env: Env) -> None:
    filler = b"X-Fill: " + b"f" * 60_000 + b"\r\n"
    outcome = exchange(env.address(), b"GET " + env.origins.raw_url("/x").encode()
                       + b" HTTP/1.1\r\nHost: x\r\n" + AUTH + filler + b"\r\n")
    assert outcome.status == 404  # the origin's own answer: the head went through
    assert env.origins.raw.requests[-1].endswith(filler + b"\r\n")


# ---- smuggling and framing --------------------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("framing", "version"),
    [
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"1.1"),  # TE first
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"1.1"),
        (b"Transfer-Encoding: xchunked\r\n", b"1.1"),
        (b"Transfer-Encoding: chunked\r\n", b"1.0"),
        (b"Transfer-Encoding:\r\n chunked\r\n", b"1.1"),  # obs-fold on the coding
        (b"Transfer-Encoding\x0b: chunked\r\n", b"1.1"),
        (b"Transfer-Encoding : chunked\r\n", b"1.1"),
        (b"Content-Length: 99999999999999999999\r\n", b"1.1"),
        (b"Content-Length: 5 5\r\n", b"1.1"),
        (b"Content-Length: 5, 6\r\n", b"1.1"),
        (b"Content-Length: -1\r\n", b"1.1"),
        (b"Content-Length: 0x5\r\n", b"1.1"),
        (b"Content-Length:\r\n", b"1.1"),
        (b"Content-Length: 5\r\n Content-Length: 6\r\n", b"1.1"),
    ],
)
def test_more_smuggling_attempts_are_refused(env: Env, framing: bytes, version: bytes) -> None:
    before = len(env.origins.raw.requests)
    outcome = exchange(env.address(), b"POST " + env.origins.raw_url("/frame").encode()
                       + b" HTTP/" + version + b"\r\nHost: x\r\n" + AUTH + framing
                       + b"\r\n0\r\n\r\n" + SMUGGLED)
    assert outcome.status in (400, 501) and outcome.closed, outcome
    assert len(env.origins.raw.requests) == before  # nothing reached the origin
    settle(env)


@pytest.mark.parametrize(
    "chunks",
    [
        b"fffffffffffffffffffff\r\n",  # overflows 64 bits
        b"5\nhello\r\n0\r\n\r\n",  # bare LF after the size
        b"5\r\nhelloEXTRA\r\n0\r\n\r\n",  # more data than announced
        b"5\r\nhello0\r\n\r\n",  # no CRLF after the data
        b"\r\n",  # an empty size line
        b"z\r\n",
    ],
)
def test_more_bad_chunk_sizes_are_refused(env: Env, chunks: bytes) -> None:
    outcome = exchange(env.address(), b"POST " + env.origins.url("/upload").encode()
                       + b" HTTP/1.1\r\nHost: x\r\n" + AUTH
                       + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    # Refused (400 before the origin answered) or cut off after it did: never served whole.
    assert outcome.closed and outcome.status in (400, 502, 200, None), outcome
    if outcome.status == 200:
        assert echo_json(outcome.body)["received"] <= 5
    settle(env)


@pytest.mark.parametrize(
    "chunks",
    [
        b"5;" + b"e" * 100_000 + b"\r\nhello\r\n0\r\n\r\n",  # a 100 kB chunk extension
        b"0" * 100_000 + b"5\r\nhello\r\n0\r\n\r\n",  # 100 kB of leading zeros
        b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",  # a trailer
    ],
)
def test_odd_but_valid_chunks_are_reframed(env: Env, chunks: bytes) -> None:
    """Extensions, leading zeros and trailers are dropped: the origin gets clean chunks."""
    outcome = exchange(env.address(), b"POST " + env.origins.url("/upload").encode()
                       + b" HTTP/1.1\r\nHost: x\r\n" + AUTH
                       + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert outcome.status == 200
    assert echo_json(outcome.body) == {"received": 5, "chunked": True}
    settle(env)


# ---- credentials ------------------------------------------------------------------------

BAD_CREDENTIALS = [
    b"Basic !!!not-base64!!!",
    b"Basic " + b"QUJD" * 3 + b"=",  # bad padding
    basic_raw(b"alice:\xff\xfepw"),  # not UTF-8
    basic_raw(b"\xc3\x28:pw"),
    basic_raw(b"alice"),  # no colon
    basic_raw(b":pw"),  # no username
    basic_raw(b"alice\x00:pw"),
    basic_raw(b"alice:pw\x00"),
    b"Basic",
    b"Basic ",
    b"Digest username=alice",
    b"Bearer abc",
    b"Basic " + b"A" * 40_000,
    basic_raw(b"a" * 5000 + b":" + b"p" * 5000),
]


@pytest.mark.parametrize("authorization", BAD_CREDENTIALS)
def test_bad_credentials_get_407_with_a_challenge(env: Env, authorization: bytes,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: x\r\n"
                       b"Proxy-Authorization: " + authorization + b"\r\n\r\n",
                       source=fresh_source())
    assert outcome.status == 407, outcome
    assert b"Proxy-Authenticate: Basic realm=" in outcome.head
    _, _, token = authorization.partition(b" ")
    for secret in (token, token[:40]):
        if len(secret) > 4:  # the answer never quotes what the client sent
            assert secret not in outcome.head + outcome.body
            assert secret.decode("latin-1") not in caplog.text
    settle(env)


def test_four_kinds_of_garbage_ban_the_source(env: Env) -> None:
    source = fresh_source()
    for authorization in BAD_CREDENTIALS[:4]:
        exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Proxy-Authorization: " + authorization + b"\r\n\r\n", source=source)
    outcome = exchange(env.address(), b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: x\r\n"
                       + AUTH + b"\r\n", source=source)
    assert outcome.status == 407 and b"banned" in outcome.head


# ---- CONNECT ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        b"127.0.0.1:0",
        b"127.0.0.1:65536",
        b"127.0.0.1:99999999999",
        b"127.0.0.1:-1",
        b"127.0.0.1:+443",
        b"127.0.0.1: 443",
        b"127.0.0.1:",
        b"127.0.0.1",
        b":443",
        b"[::1",
        b"[::1]x:443",
        b"[::1]",
        b"[not-an-ip]:443",
        b"user@127.0.0.1:443",
        b"127.0.0.1:443/path",
        b"http://127.0.0.1:443",
        b"-bad-.example:443",
        b"*.example:443",
        b"%31%32%37.0.0.1:443",
        b"exa\xffmple:443",
        b"a" * 300 + b":443",
        b"127.0.0.1:443:443",
    ],
)
def test_connect_to_odd_ports_and_names_is_refused(env: Env, target: bytes) -> None:
    outcome = exchange(env.address(), b"CONNECT " + target + b" HTTP/1.1\r\nHost: x\r\n"
                       + AUTH + b"\r\n")
    assert outcome.status == 400 and outcome.closed, outcome
    settle(env)


def test_connect_to_a_closed_port_is_502(env: Env) -> None:
    outcome = exchange(env.address(), b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n" + AUTH
                       + b"\r\n")
    assert outcome.status == 502
    settle(env)


# ---- slow clients -------------------------------------------------------------------------


def test_a_head_dripped_byte_by_byte_still_times_out(start_env: Callable[..., Env]) -> None:
    """The header timeout is for the whole head, not between bytes (slowloris)."""
    env = start_env(header_timeout=1.0, quota_check_interval=0.1)
    head = b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: x\r\n" + b"X-Drip: " + b"d" * 200
    with open_from(env.address()) as sock:
        started = time.monotonic()
        sock.settimeout(0.1)
        answer = b""
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(4096)
                if answer:
                    break
            except TimeoutError:
                pass
            assert time.monotonic() - started < 5, "the drip was never cut off"
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 2.5


def test_many_slowloris_connections_are_all_closed(start_env: Callable[..., Env]) -> None:
    env = start_env(header_timeout=1.0, quota_check_interval=0.1)
    baseline = own_fds()
    sockets = [open_from(env.address(), fresh_source()) for _ in range(200)]
    try:
        for index, sock in enumerate(sockets):
            if index % 2:
                sock.sendall(b"GET " + _echo(env) + b" HTTP/1.1\r\nHost: x\r\n")  # never ends
        wait_until(lambda: len(env.node.services.connections) == 200, 3)
        settle(env, within=5)
        for sock in sockets:
            sock.settimeout(2)
            data = sock.recv(4096)
            assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in sockets:
            sock.close()
    wait_until(lambda: own_fds() <= baseline + 2, 3, "descriptors leaked")


def test_a_stalled_chunked_body_is_cut_off(start_env: Callable[..., Env]) -> None:
    env = start_env(header_timeout=1.0, quota_check_interval=0.1)
    env.account("alice")
    env.sync()
    with open_from(env.address()) as sock:
        sock.sendall(b"POST " + env.origins.url("/upload").encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     + AUTH + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel")
        started = time.monotonic()
        sock.settimeout(5)
        while sock.recv(65536):  # whatever comes, the connection ends
            pass
        assert time.monotonic() - started < 4
    settle(env)


# ---- tunnels that half-close ----------------------------------------------------------------


def _tunnel(env: Env, port: int) -> socket.socket:
    sock = open_from(env.address())
    sock.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n" % port + AUTH + b"\r\n")
    assert read_reply(sock, head_only=True).status == 200
    return sock


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(5)
    return server


def _read_to_end(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def test_client_half_close_lets_the_origin_answer(env: Env) -> None:
    with _listener() as server:
        client = _tunnel(env, server.getsockname()[1])
        origin, _ = server.accept()
        with client, origin:
            client.sendall(b"question")
            client.shutdown(socket.SHUT_WR)
            assert _read_to_end(origin) == b"question"  # EOF reached the origin
            origin.sendall(b"answer after the client's EOF")
            origin.shutdown(socket.SHUT_WR)
            assert _read_to_end(client) == b"answer after the client's EOF"
    settle(env)


def test_origin_half_close_lets_the_client_go_on(env: Env) -> None:
    with _listener() as server:
        client = _tunnel(env, server.getsockname()[1])
        origin, _ = server.accept()
        with client, origin:
            origin.sendall(b"greeting")
            origin.shutdown(socket.SHUT_WR)
            assert _read_to_end(client) == b"greeting"
            client.sendall(b"late words")
            client.shutdown(socket.SHUT_WR)
            assert _read_to_end(origin) == b"late words"
    settle(env)


def test_a_tunnel_reset_by_either_side_is_released(env: Env) -> None:
    baseline = own_fds()
    with _listener() as server:
        for reset_client in (True, False):
            client = _tunnel(env, server.getsockname()[1])
            origin, _ = server.accept()
            victim, other = (client, origin) if reset_client else (origin, client)
            victim.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00"
                              b"\x00\x00")
            victim.close()  # RST
            other.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert other.recv(10) == b""
            other.close()
            settle(env)
    wait_until(lambda: own_fds() <= baseline, 3, "descriptors leaked")
