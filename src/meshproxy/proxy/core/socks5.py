"""The SOCKS5 handshake as a sans-I/O state machine: bytes in, events and replies out.

RFC 1928 (greeting, method selection, CONNECT request, reply) with RFC 1929
username/password. The driver (server/socks.py) feeds what it reads to `feed` and acts
on the events; it answers a `Login` with `logged_in(ok)` and a `Connect` with `reply`.
Anything that is not a well-formed SOCKS5 handshake — another version, no methods, a
zero-length name, an unknown address type, bytes beyond what a handshake can hold — is
a `Refused`: the bytes to send (if any) before closing, and why (for the log). A
handshake that never completes is the driver's to time out.

States: GREETING → (AUTH → LOGGING_IN →) REQUEST → CONNECTING → DONE, or CLOSED.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

VERSION: Final = 5
NO_AUTH, USERNAME_PASSWORD, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
CONNECT, BIND, UDP_ASSOCIATE = 1, 2, 3
IPV4, DOMAIN, IPV6 = 1, 3, 4

# Reply codes (RFC 1928 §6).
SUCCEEDED: Final = 0x00
GENERAL_FAILURE: Final = 0x01
NOT_ALLOWED: Final = 0x02
NETWORK_UNREACHABLE: Final = 0x03
HOST_UNREACHABLE: Final = 0x04
CONNECTION_REFUSED: Final = 0x05
TTL_EXPIRED: Final = 0x06
COMMAND_NOT_SUPPORTED: Final = 0x07
ADDRESS_TYPE_NOT_SUPPORTED: Final = 0x08

# More than a greeting, a login and a request can hold before the request is complete
# (2 + 255, 3 + 255 + 255, 6 + 1 + 255): a client sending more is not speaking SOCKS5.
MAX_HANDSHAKE: Final = 1100


class State(Enum):
    GREETING = auto()
    AUTH = auto()
    LOGGING_IN = auto()  # credentials handed out; waiting for `logged_in`
    REQUEST = auto()
    CONNECTING = auto()  # the request handed out; waiting for `reply`
    DONE = auto()  # replied with success: the bytes that follow are the tunnel's
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes to write to the client; the handshake goes on."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """Write `data` (may be empty), then close. `reason` is for the log."""

    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Login:
    """RFC 1929 credentials to check; answer with `logged_in`."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Connect:
    """A CONNECT to `host` (an IP literal or a name the proxy resolves) and `port`;
    answer with `reply`. `early`: bytes the client sent after the request (for the
    destination, once connected)."""

    host: str
    port: int
    early: bytes = b""


Event = Send | Refused | Login | Connect


class Socks5:
    def __init__(self, *, no_auth: bool) -> None:
        self.no_auth = no_auth  # the client's address authenticates it (IP or hostname)
        self.state = State.GREETING
        self._buffer = b""
        self.method: int | None = None

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes read from the client; the events they complete, in order."""
        if self.state in (State.CLOSED, State.DONE):
            return []
        self._buffer += data
        events: list[Event] = []
        while self._buffer and self.state in (State.GREETING, State.AUTH, State.REQUEST):
            before = self.state
            event = self._step()
            if event is None:
                break  # wait for more bytes
            events.append(event)
            if isinstance(event, Refused):
                self.state = State.CLOSED
                self._buffer = b""
                break
            if self.state is before:
                break
        if self.state is not State.CLOSED and len(self._buffer) > MAX_HANDSHAKE:
            self.state = State.CLOSED
            self._buffer = b""
            events.append(Refused(b"", "more bytes than a SOCKS5 handshake holds"))
        return events

    # ---- the states ---------------------------------------------------------------------

    def _step(self) -> Event | None:
        if self.state is State.GREETING:
            return self._greeting()
        if self.state is State.AUTH:
            return self._login()
        return self._request()

    def _greeting(self) -> Event | None:
        data = self._buffer
        if data[0] != VERSION:
            return Refused(b"", f"not SOCKS version 5 (version byte {data[0]})")
        if len(data) < 2:
            return None
        count = data[1]
        if count == 0:
            return Refused(b"\x05\xff", "a SOCKS5 greeting offering no method")
        if len(data) < 2 + count:
            return None
        methods = data[2 : 2 + count]
        self._buffer = data[2 + count :]
        if USERNAME_PASSWORD in methods:  # credentials win over the client's address
            self.method, self.state = USERNAME_PASSWORD, State.AUTH
            return Send(b"\x05\x02")
        if NO_AUTH in methods and self.no_auth:
            self.method, self.state = NO_AUTH, State.REQUEST
            return Send(b"\x05\x00")
        return Refused(b"\x05\xff", "no acceptable SOCKS5 authentication method")

    def _login(self) -> Event | None:
        data = self._buffer
        if data[0] != 1:
            return Refused(b"\x01\x01", f"not RFC 1929 version 1 (version byte {data[0]})")
        if len(data) < 2:
            return None
        ulen = data[1]
        if len(data) < 3 + ulen:
            return None
        plen = data[2 + ulen]
        end = 3 + ulen + plen
        if len(data) < end:
            return None
        if ulen == 0:
            return Refused(b"\x01\x01", "an empty SOCKS5 username")
        try:
            username = data[2 : 2 + ulen].decode("utf-8")
            password = data[3 + ulen : end].decode("utf-8")
        except UnicodeDecodeError:
            return Refused(b"\x01\x01", "SOCKS5 credentials that are not UTF-8")
        self._buffer = data[end:]
        self.state = State.LOGGING_IN
        return Login(username, password)

    def logged_in(self, ok: bool) -> list[Event]:
        """The answer to `Login`; then any request already read."""
        assert self.state is State.LOGGING_IN
        if not ok:
            self.state = State.CLOSED
            self._buffer = b""
            return [Refused(b"\x01\x01", "SOCKS5 credentials refused")]
        self.state = State.REQUEST
        return [Send(b"\x01\x00"), *self.feed(b"")]

    def _request(self) -> Event | None:
        data = self._buffer
        if data[0] != VERSION:
            return Refused(b"", f"not SOCKS version 5 (version byte {data[0]})")
        if len(data) < 5:
            return None
        command, kind = data[1], data[3]
        if kind == IPV4:
            end = 4 + 4
        elif kind == IPV6:
            end = 4 + 16
        elif kind == DOMAIN:
            end = 5 + data[4]
        else:
            return Refused(_reply(ADDRESS_TYPE_NOT_SUPPORTED), f"SOCKS5 address type {kind}")
        if len(data) < end + 2:
            return None
        port = int.from_bytes(data[end : end + 2], "big")
        early = data[end + 2 :]
        self._buffer = b""
        if command != CONNECT:
            what = {BIND: "BIND", UDP_ASSOCIATE: "UDP ASSOCIATE"}.get(command, str(command))
            return Refused(_reply(COMMAND_NOT_SUPPORTED), f"SOCKS5 command {what}")
        if kind == IPV4:
            host = str(ipaddress.IPv4Address(data[4:8]))
        elif kind == IPV6:
            host = str(ipaddress.IPv6Address(data[4:20]))
        else:
            name = data[5:end]
            if not name or not all(0x21 <= b < 0x7F for b in name):
                return Refused(_reply(GENERAL_FAILURE), "a SOCKS5 domain name that is not one")
            host = name.decode("ascii")
        if port == 0:
            return Refused(_reply(GENERAL_FAILURE), "SOCKS5 destination port 0")
        self.state = State.CONNECTING
        return Connect(host, port, early)

    def leftover(self) -> bytes:
        """Bytes read after the request while its reply was awaited (the tunnel's)."""
        data, self._buffer = self._buffer, b""
        return data

    def reply(self, code: int, bound: tuple[str, int] | None = None) -> bytes:
        """The reply to `Connect`: SUCCEEDED with the address the proxy connected from
        (the tunnel follows), or a failure code (then close)."""
        assert self.state is State.CONNECTING
        self.state = State.DONE if code == SUCCEEDED else State.CLOSED
        return _reply(code, bound)


def _reply(code: int, bound: tuple[str, int] | None = None) -> bytes:
    host, port = bound or ("0.0.0.0", 0)
    address = ipaddress.ip_address(host)
    kind = IPV4 if address.version == 4 else IPV6
    return bytes((VERSION, code, 0, kind)) + address.packed + port.to_bytes(2, "big")


def reply_code(status: int, proxy_status: str) -> int:
    """The SOCKS5 reply for a refusal the HTTP proxy would answer with `status`
    (docs/socks5.md has the table)."""
    if proxy_status == "dns_error":
        return HOST_UNREACHABLE
    if proxy_status == "connection_refused":
        return CONNECTION_REFUSED
    if proxy_status == "connection_timeout":
        return TTL_EXPIRED
    if proxy_status == "destination_ip_unroutable":
        return NETWORK_UNREACHABLE
    if status in (400, 402, 403, 407, 509):
        return NOT_ALLOWED
    return GENERAL_FAILURE


def connect_error_type(code: int) -> str:
    """The RFC 9209 error type of a connect that failed with reply `code` (the metrics'
    name for it, as the HTTP proxy's 502/504 would say)."""
    return {
        CONNECTION_REFUSED: "connection_refused",
        TTL_EXPIRED: "connection_timeout",
        NETWORK_UNREACHABLE: "destination_ip_unroutable",
        HOST_UNREACHABLE: "destination_ip_unroutable",
    }.get(code, "proxy_internal_error")
