"""Response heads without sockets: framing and the rewritten head."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.response import Framing, ResponseHead, interim, parse_response_head

ADDED = b"X-ProxyMesh-IP: 127.0.0.9\r\n"


def parse(raw: bytes, *, head: bool = False, keep: bool = True) -> ResponseHead:
    result = parse_response_head(raw, head_request=head, client_keep_alive=keep, added=ADDED)
    assert isinstance(result, ResponseHead), result
    return result


def test_length_response_gets_egress_header_and_loses_hop_by_hop() -> None:
    parsed = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
        b"Keep-Alive: timeout=5\r\nX-ProxyMesh-IP: 6.6.6.6\r\nX-Other: 2"
    )
    assert parsed.framing is Framing.LENGTH and parsed.length == 5
    assert parsed.upstream_reusable and parsed.client_keep
    assert parsed.head == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Other: 2\r\n" + ADDED + b"\r\n"
    )


def test_chunked_and_until_close() -> None:
    chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")
    assert chunked.framing is Framing.CHUNKED and b"Transfer-Encoding: chunked" in chunked.head
    close = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain")
    assert close.framing is Framing.UNTIL_CLOSE
    assert not close.upstream_reusable and not close.client_keep
    assert close.head.endswith(b"Connection: close\r\n\r\n")
    gzip_only = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip")
    assert gzip_only.framing is Framing.UNTIL_CLOSE


@pytest.mark.parametrize(
    ("raw", "head"),
    [
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 10", False),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0", False),
    ],
)
def test_bodiless_responses(raw: bytes, head: bool) -> None:
    parsed = parse(raw, head=head)
    assert parsed.framing is Framing.NONE and parsed.upstream_reusable


def test_upstream_close_and_http10() -> None:
    assert not parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close").upstream_reusable
    assert not parse(b"HTTP/1.0 200 OK\r\nContent-Length: 1").upstream_reusable


def test_client_closing_gets_connection_close() -> None:
    parsed = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1", keep=False)
    assert not parsed.client_keep and parsed.head.endswith(b"Connection: close\r\n\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
        b"HTTP/1.1 200 OK\r\nBad Header: x",
        b"HTTP/1.1 200 OK\r\n folded",
        b"HTTP/2 200 OK",
        b"garbage",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket",
    ],
)
def test_bad_upstream_heads(raw: bytes) -> None:
    result = parse_response_head(raw, head_request=False, client_keep_alive=True, added=ADDED)
    assert isinstance(result, ProxyError) and result.status == 502


def test_interim() -> None:
    assert interim(b"HTTP/1.1 100 Continue") == 100
    assert interim(b"HTTP/1.1 103 Early Hints") == 103
    assert interim(b"HTTP/1.1 101 Switching Protocols") is None
    assert interim(b"HTTP/1.1 200 OK") is None
