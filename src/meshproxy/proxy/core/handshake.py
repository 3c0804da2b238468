"""The client side of the handshakes that open a tunnel through an upstream proxy, without
sockets: HTTP CONNECT (RFC 9110 §9.3.6, with Proxy-Authorization: Basic) and SOCKS5
CONNECT (RFC 1928, user/password sub-negotiation RFC 1929).

Each step says exactly how many bytes to read next (SOCKS5) or parses a complete
response head (HTTP), so the caller never reads past the handshake into the target's
first bytes.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
from typing import Final

from meshproxy.domain.addresses import host_port

MAX_CONNECT_HEAD: Final = 16 * 1024


class HandshakeError(Exception):
    """The upstream refused or garbled the handshake. `status`: its HTTP status (0: none);
    `blame`: whether it counts against the upstream (its own failure, a 401/407 or 5xx,
    a garbled answer; tinyproxy says 401 to bad credentials) rather than the target's
    (a SOCKS5 "connection refused", a 403)."""

    def __init__(self, why: str, status: int = 0, *, blame: bool = True) -> None:
        super().__init__(why)
        self.status = status
        self.blame = blame


def http_connect_request(
    host: str, port: int, username: str | None, password: str | None
) -> bytes:
    authority = host_port(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if username is not None:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
        lines.append(f"Proxy-Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_connect_status(head: bytes) -> int:
    """The status of an upstream's complete answer head to CONNECT; HandshakeError unless
    it is 2xx (the tunnel is open)."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HandshakeError("the upstream's answer to CONNECT is not HTTP")
    status = int(parts[1])
    if not 200 <= status < 300:
        reason = parts[2].decode("latin-1").strip() if len(parts) > 2 else ""
        raise HandshakeError(f"the upstream answered CONNECT with {status} {reason}".rstrip(),
                             status, blame=status in (401, 407) or status >= 500)
    return status


SOCKS_VERSION: Final = 5
NO_AUTH, USER_PASSWORD, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
SOCKS_REPLIES: Final = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class Socks5Connect:
    """A SOCKS5 CONNECT to an IP address: `start()` gives the first bytes to send; then
    read exactly `wanted` bytes and pass them to `received`, which gives the next bytes
    to send, until `done`."""

    def __init__(self, ip: str, port: int, username: str | None, password: str | None) -> None:
        self._target = ipaddress.ip_address(ip)
        self._port = port
        self._credentials = (
            None if username is None else (username.encode(), (password or "").encode())
        )
        self._step = "method"
        self.wanted = 2
        self.done = False

    def start(self) -> bytes:
        methods = bytes([USER_PASSWORD]) if self._credentials else bytes([NO_AUTH])
        return bytes([SOCKS_VERSION, len(methods)]) + methods

    def received(self, data: bytes) -> bytes:
        if len(data) != self.wanted:
            raise HandshakeError("the SOCKS5 upstream closed during the handshake")
        step = self._step
        if step == "method":
            return self._method(data)
        if step == "auth":
            if data[1] != 0:
                raise HandshakeError("the SOCKS5 upstream refused the user name or password",
                                     407)
            return self._connect()
        if step == "reply":
            return self._reply(data)
        # "address": the rest of the reply (the bound address), read and dropped.
        self.done = True
        self.wanted = 0
        return b""

    def _method(self, data: bytes) -> bytes:
        if data[0] != SOCKS_VERSION:
            raise HandshakeError("the upstream does not speak SOCKS5")
        method = data[1]
        if method == NO_AUTH:
            return self._connect()
        if method == USER_PASSWORD and self._credentials is not None:
            username, password = self._credentials
            self._step, self.wanted = "auth", 2
            return bytes([1, len(username)]) + username + bytes([len(password)]) + password
        if method == NO_ACCEPTABLE and self._credentials is None:
            raise HandshakeError("the SOCKS5 upstream wants credentials; none configured", 407)
        raise HandshakeError("the SOCKS5 upstream accepts none of the offered methods", 407)

    def _connect(self) -> bytes:
        self._step, self.wanted = "reply", 5  # VER REP RSV ATYP and the first address byte
        kind = 1 if self._target.version == 4 else 4
        return (bytes([SOCKS_VERSION, 1, 0, kind]) + self._target.packed
                + struct.pack("!H", self._port))

    def _reply(self, data: bytes) -> bytes:
        if data[0] != SOCKS_VERSION:
            raise HandshakeError("the upstream's SOCKS5 reply is garbled")
        if data[1] != 0:
            why = SOCKS_REPLIES.get(data[1], f"reply {data[1]}")
            # Replies 2-8 are about the target: the upstream itself worked.
            raise HandshakeError(f"the SOCKS5 upstream could not connect: {why}",
                                 blame=data[1] == 1)
        kind = data[3]
        # What remains: the bound address (its first byte already read) and the port.
        if kind == 1:
            rest = 4 - 1 + 2
        elif kind == 4:
            rest = 16 - 1 + 2
        elif kind == 3:
            rest = data[4] + 2  # a name: its length byte was the one read
        else:
            raise HandshakeError("the upstream's SOCKS5 reply is garbled")
        self._step, self.wanted = "address", rest
        return b""
