"""The header rules requests and responses share (proxy/core/headers.py), run against both:
every hop-by-hop header (and one Connection names) is dropped, and a Content-Length is
digits only, at most 18 of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshproxy.proxy.core.headers import HOP_BY_HOP
from meshproxy.proxy.core.request import PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.core.response import ResponseHead, parse_response_head

# headers -> the forwarded head, or None when the message is refused
Forward = Callable[[list[tuple[bytes, bytes]]], bytes | None]


def as_request(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    result = prepare_request(RequestHead(b"GET", b"http://example.com/", "1.1", headers, True))
    return result.upstream_head if isinstance(result, PreparedRequest) else None


def as_response(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    raw = b"HTTP/1.1 200 OK" + b"".join(b"\r\n" + n + b": " + v for n, v in headers)
    result = parse_response_head(raw, head_request=False, client_keep_alive=True, added=b"")
    return result.head if isinstance(result, ResponseHead) else None


DIRECTIONS = {"request": as_request, "response": as_response}


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("name", sorted(HOP_BY_HOP))
def test_hop_by_hop_headers_are_dropped_both_ways(direction: str, name: bytes) -> None:
    forwarded = DIRECTIONS[direction](
        [(name.title(), b"x"), (b"Connection", b"X-Named"), (b"X-Named", b"1"),
         (b"Content-Length", b"0"), (b"X-Kept", b"2")]
    )
    assert forwarded is not None
    lowered = forwarded.lower()
    assert b"\r\n" + name + b":" not in lowered and b"x-named" not in lowered
    assert b"x-kept: 2" in lowered


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize(
    ("length", "accepted"),
    [(b"0", True), (b"123456789012345678", True), (b"1234567890123456789", False),
     (b"+5", False), (b"5 5", False), (b"0x10", False), (b"-1", False)],
)
def test_a_content_length_is_up_to_18_digits_both_ways(
    direction: str, length: bytes, accepted: bool
) -> None:
    forwarded = DIRECTIONS[direction]([(b"Content-Length", length)])
    assert (forwarded is not None) == accepted
