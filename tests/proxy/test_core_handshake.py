"""The client side of the upstream handshakes, without sockets (core/handshake.py)."""

from __future__ import annotations

import base64

import pytest

from meshproxy.proxy.core.handshake import (
    HandshakeError,
    Socks5Connect,
    http_connect_request,
    http_connect_status,
)


def test_http_connect_request_and_answers() -> None:
    request = http_connect_request("2001:db8::1", 443, "u", "p:w")
    token = base64.b64encode(b"u:p:w").decode()
    assert request == (b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"
                       b"Proxy-Authorization: Basic " + token.encode() + b"\r\n\r\n")
    assert b"Proxy-Authorization" not in http_connect_request("127.0.0.1", 80, None, None)
    assert http_connect_status(b"HTTP/1.1 200 Connection established\r\n\r\n") == 200
    for head, status, blame in ((b"HTTP/1.0 407 Proxy Authentication Required", 407, True),
                                (b"HTTP/1.0 401 Unauthorized", 401, True),
                                (b"HTTP/1.1 503 Service Unavailable", 503, True),
                                (b"HTTP/1.1 403 Forbidden", 403, False),
                                (b"SSH-2.0-OpenSSH", 0, True)):
        with pytest.raises(HandshakeError) as refused:
            http_connect_status(head + b"\r\n\r\n")
        assert (refused.value.status, refused.value.blame) == (status, blame)


def test_socks5_with_credentials_reads_exactly_each_reply() -> None:
    shake = Socks5Connect("127.0.0.1", 8080, "user", "pässword")
    assert shake.start() == b"\x05\x01\x02"
    assert shake.wanted == 2
    auth = shake.received(b"\x05\x02")
    assert auth == b"\x01\x04user\x09" + "pässword".encode()
    connect = shake.received(b"\x01\x00")
    assert connect == b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"
    assert shake.wanted == 5
    assert shake.received(b"\x05\x00\x00\x04\x20") == b""  # an IPv6 bound address follows
    assert shake.wanted == 15 + 2 and not shake.done
    shake.received(bytes(17))
    assert shake.done


def test_socks5_refusals_say_whose_fault() -> None:
    no_auth = Socks5Connect("::1", 443, None, None)
    assert no_auth.start() == b"\x05\x01\x00"
    assert no_auth.received(b"\x05\x00")[:4] == b"\x05\x01\x00\x04"
    with pytest.raises(HandshakeError) as target:
        no_auth.received(b"\x05\x05\x00\x01\x00")
    assert "connection refused" in str(target.value) and not target.value.blame
    for replies, blame in (([b"\x05\xff"], True), ([b"\x04\x00"], True),
                           ([b"\x05\x00", b"\x05\x01\x00\x01\x00"], True)):
        shake = Socks5Connect("127.0.0.1", 1, None, None)
        shake.start()
        with pytest.raises(HandshakeError) as refused:
            for reply in replies:
                shake.received(reply)
        assert refused.value.blame is blame
    wrong = Socks5Connect("127.0.0.1", 1, "u", "bad")
    wrong.start()
    wrong.received(b"\x05\x02")
    with pytest.raises(HandshakeError) as denied:
        wrong.received(b"\x01\x01")
    assert denied.value.status == 407 and denied.value.blame
    with pytest.raises(HandshakeError):  # cut short
        Socks5Connect("127.0.0.1", 1, None, None).received(b"\x05")
