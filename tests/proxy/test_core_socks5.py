"""The SOCKS5 handshake machine (core/socks5.py), bytes in and out, without sockets."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core import socks5
from meshproxy.proxy.core.socks5 import Connect, Login, Refused, Send, Socks5, State

GREETING = b"\x05\x01\x02"
LOGIN = b"\x01\x05alice\x02pw"
REQUEST_V4 = b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"


def logged_in(machine: Socks5) -> None:
    assert machine.feed(GREETING) == [Send(b"\x05\x02")]
    assert machine.feed(LOGIN) == [Login("alice", "pw")]
    assert machine.logged_in(True) == [Send(b"\x01\x00")]


def test_username_password_then_connect_to_every_address_type() -> None:
    for request, host in [
        (REQUEST_V4, "127.0.0.1"),
        (b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x1f\x90", "::1"),
        (b"\x05\x01\x00\x03\x09localhost\x1f\x90", "localhost"),
    ]:
        machine = Socks5(no_auth=False)
        logged_in(machine)
        assert machine.feed(request + b"early") == [Connect(host, 8080, b"early")]
        before_reply = machine.state  # asserted below: mypy keeps an `is` narrowing past reply()
        reply = machine.reply(socks5.SUCCEEDED, ("127.0.0.9", 4242))
        assert reply == b"\x05\x00\x00\x01\x7f\x00\x00\x09\x10\x92"
        assert (before_reply, machine.state) == (State.CONNECTING, State.DONE)
        assert machine.feed(b"tunnel bytes") == []  # the tunnel's, not the handshake's


def test_byte_by_byte_and_all_at_once_give_the_same_events() -> None:
    whole = Socks5(no_auth=False)
    events = whole.feed(GREETING + LOGIN)
    assert events == [Send(b"\x05\x02"), Login("alice", "pw")]
    # The request pipelined behind the login waits for the login's answer.
    assert whole.feed(REQUEST_V4) == []
    assert whole.logged_in(True) == [Send(b"\x01\x00"), Connect("127.0.0.1", 8080)]
    trickle = Socks5(no_auth=False)
    seen = []
    for byte in GREETING + LOGIN:
        seen += trickle.feed(bytes([byte]))
    assert seen == events


def test_no_auth_only_for_clients_their_address_authenticates() -> None:
    allowed = Socks5(no_auth=True)
    assert allowed.feed(b"\x05\x01\x00") == [Send(b"\x05\x00")]
    assert allowed.feed(REQUEST_V4) == [Connect("127.0.0.1", 8080)]
    refused = Socks5(no_auth=False)
    assert refused.feed(b"\x05\x01\x00") == [
        Refused(b"\x05\xff", "no acceptable SOCKS5 authentication method")
    ]
    assert refused.state is State.CLOSED
    both = Socks5(no_auth=True)  # credentials, when offered, win
    assert both.feed(b"\x05\x02\x00\x02") == [Send(b"\x05\x02")]


def test_wrong_credentials_and_unsupported_commands() -> None:
    machine = Socks5(no_auth=False)
    machine.feed(GREETING + LOGIN)
    assert machine.logged_in(False) == [Refused(b"\x01\x01", "SOCKS5 credentials refused")]
    for command in (socks5.BIND, socks5.UDP_ASSOCIATE):
        machine = Socks5(no_auth=False)
        logged_in(machine)
        events = machine.feed(bytes([5, command]) + REQUEST_V4[2:])
        assert len(events) == 1 and isinstance(events[0], Refused)
        assert events[0].data[:2] == b"\x05\x07"  # command not supported


@pytest.mark.parametrize(
    ("stage", "data", "sent", "why"),
    [
        ("greeting", b"\x04\x01\x00\x50", b"", "not SOCKS version 5"),
        ("greeting", b"GET / HTTP/1.1\r\n", b"", "not SOCKS version 5"),
        ("greeting", b"\x05\x00", b"\x05\xff", "offering no method"),
        ("greeting", b"\x05\x01\x01", b"\x05\xff", "no acceptable"),
        ("login", b"\x02\x05alice\x02pw", b"\x01\x01", "not RFC 1929"),
        ("login", b"\x01\x00\x02pw", b"\x01\x01", "an empty SOCKS5 username"),
        ("login", b"\x01\x02\xff\xfe\x00", b"\x01\x01", "not UTF-8"),
        ("request", b"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", b"", "not SOCKS version 5"),
        ("request", b"\x05\x01\x00\x09\x7f\x00\x00\x01\x00\x50", b"\x05\x08", "address type"),
        ("request", b"\x05\x01\x00\x03\x00\x00\x50", b"\x05\x01", "not one"),
        ("request", b"\x05\x01\x00\x03\x03a\x00b\x00\x50", b"\x05\x01", "not one"),
        ("request", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00", b"\x05\x01", "port 0"),
    ],
)
def test_hostile_input_is_a_clean_refusal(stage: str, data: bytes, sent: bytes, why: str) -> None:
    machine = Socks5(no_auth=False)
    if stage != "greeting":
        machine.feed(GREETING)
    if stage == "request":
        machine.feed(LOGIN)
        machine.logged_in(True)
    events = machine.feed(data)
    assert len(events) == 1 and isinstance(events[0], Refused), events
    assert events[0].data.startswith(sent) and why in events[0].reason
    assert machine.state is State.CLOSED
    assert machine.feed(b"more") == []


def test_truncated_input_waits_and_absurd_amounts_are_refused() -> None:
    machine = Socks5(no_auth=False)
    assert machine.feed(b"\x05\xff" + b"\x01" * 100) == []  # 255 methods announced, 100 sent
    assert machine.state is State.GREETING
    flood = Socks5(no_auth=False)
    flood.feed(GREETING + LOGIN)  # waiting for the login's answer
    events = flood.feed(b"\x05" * (socks5.MAX_HANDSHAKE + 1))
    assert events == [Refused(b"", "more bytes than a SOCKS5 handshake holds")]


def test_refusals_map_onto_reply_codes() -> None:
    assert socks5.reply_code(502, "dns_error") == socks5.HOST_UNREACHABLE
    assert socks5.reply_code(502, "connection_refused") == socks5.CONNECTION_REFUSED
    assert socks5.reply_code(504, "connection_timeout") == socks5.TTL_EXPIRED
    for status in (402, 403, 509):
        assert socks5.reply_code(status, "http_request_denied") == socks5.NOT_ALLOWED
    assert socks5.reply_code(503, "proxy_internal_error") == socks5.GENERAL_FAILURE
