"""Hostile SOCKS5 at a real node's SOCKS listener, as raw bytes: each gets a clean
refusal or close, slow handshakes are closed by the sweep (header_timeout), and the
node lets go of every connection."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.listeners import start_listeners
from support.proxy_env import Env

from .raw import settle

__all__ = ["start_listeners"]  # a fixture

LOGIN = b"\x05\x01\x02" + b"\x01\x05alice\x02pw"


@pytest.fixture
def hostile(start_listeners: Callable[..., Env]) -> Env:
    return start_listeners(header_timeout=0.6)


def answer(env: Env, data: bytes, timeout: float = 5.0, *, half_close: bool = False) -> bytes:
    """Send `data` (then end the sending side), and read everything until the proxy
    closes."""
    with socket.create_connection(env.node.socks_addresses["open"], timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            try:
                piece = sock.recv(4096)
            except ConnectionResetError:
                return got
            if not piece:
                return got
            got += piece


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b""),  # SOCKS4
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""),  # HTTP at the SOCKS port
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""),  # a TLS ClientHello
        (b"\x05\x00", b"\x05\xff"),  # no methods
        (b"\x05\x01\x00", b"\x05\xff"),  # no-auth for a client no IP authenticates
        (b"\x05\x01\x02\x01\x00\x00", b"\x05\x02\x01\x01"),  # an empty username
        (b"\x05\x01\x02\x01\x05alice\x05wrong", b"\x05\x02\x01\x01"),  # a wrong password
        (LOGIN + b"\x05\x01\x00\x07" + b"\x00" * 6, b"\x05\x02\x01\x00\x05\x08"),  # address type
        (LOGIN + b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x02\x01\x00\x05\x07"),
        (LOGIN + b"\x05\x01\x00\x03\x00\x00\x50", b"\x05\x02\x01\x00\x05\x01"),  # empty name
        (b"\x05\x01\x02" + b"\x01" * 1200, b"\x05\x02"),  # more than a handshake holds
    ],
)
def test_hostile_handshakes_get_a_clean_refusal(hostile: Env, data: bytes,
                                                expected: bytes) -> None:
    assert answer(hostile, data).startswith(expected)
    settle(hostile)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x05", b"\x05\xff\x02", b"\x05\x01\x02\x01\x05ali", LOGIN + b"\x05\x01\x00\x03\x40ab"],
)
def test_truncated_and_slow_handshakes_are_closed_by_the_sweep(hostile: Env, data: bytes) -> None:
    assert answer(hostile, data).startswith(b"\x05\x02" if len(data) > 3 else b"")
    settle(hostile)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=600))
def test_random_bytes_never_open_a_tunnel(hostile: Env, data: bytes) -> None:
    reply = answer(hostile, data, timeout=5, half_close=True)
    assert not reply.startswith(b"\x05\x00") and b"\x05\x00\x00" not in reply
