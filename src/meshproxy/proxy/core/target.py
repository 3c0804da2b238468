"""Request targets: absolute-form (`http://host:port/path`) and authority-form (`host:port`).

Written by hand rather than with a URL library: ports must not wrap, hosts must be
plain names or IP literals, and anything odd is refused rather than guessed at.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

_NAME_RE: Final = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
_PORT_RE: Final = re.compile(rb"[0-9]{1,5}")
_AUTHORITY_END: Final = re.compile(rb"[/?#]")
# Authorities seen before -> (host, port), one map per default port: most requests go to
# hosts the proxy has just served, and an IPv6 literal is not re-parsed every time.
_KNOWN_MAX: Final = 4096
_known: dict[int | None, dict[bytes, tuple[str, int]]] = {80: {}, None: {}}


class TargetError(ValueError):
    """Why a target cannot be used (the message goes into the 400 answer)."""


@dataclass(slots=True)  # not frozen: one per request, and frozen dataclasses build slowly
class Target:
    host: str  # a DNS name (lower case) or an IP literal without brackets
    port: int
    path: bytes  # origin-form for the upstream request line; b"" for CONNECT

    @property
    def is_ip(self) -> bool:
        return is_ip_literal(self.host)

    def authority(self, default_port: int) -> bytes:
        """The Host header value: brackets for IPv6, the port unless it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == default_port:
            return host.encode("ascii")
        return f"{host}:{self.port}".encode("ascii")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def routed(address: str) -> str:
    """The address to route to: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a
    literal or a resolver) is the IPv4 host it maps, for policy and egress family alike."""
    if address.startswith("::ffff:"):
        mapped = ipaddress.IPv6Address(address).ipv4_mapped
        if mapped is not None:
            return str(mapped)
    return address


def _port(text: bytes) -> int:
    if not _PORT_RE.fullmatch(text):
        raise TargetError("invalid port")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError("port out of range")
    return port


def _host_and_port(authority: bytes, default_port: int | None) -> tuple[str, int]:
    known = _known[default_port]
    found = known.get(authority)
    if found is None:
        found = _parse_host_and_port(authority, default_port)
        if len(known) >= _KNOWN_MAX:
            known.clear()
        known[authority] = found
    return found


def _parse_host_and_port(authority: bytes, default_port: int | None) -> tuple[str, int]:
    if not authority:
        raise TargetError("missing host")
    if b"@" in authority:
        raise TargetError("user information in the target is not allowed")
    if authority.startswith(b"["):
        end = authority.find(b"]")
        if end < 0:
            raise TargetError("unterminated IPv6 literal")
        literal, rest = authority[1:end], authority[end + 1 :]
        try:
            host = str(ipaddress.IPv6Address(literal.decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            raise TargetError("invalid IPv6 literal") from None
        if rest and not rest.startswith(b":"):
            raise TargetError("invalid authority")
        port_text = rest[1:] if rest else b""
    else:
        name, colon, port_text = authority.partition(b":")
        if not _NAME_RE.fullmatch(name):
            raise TargetError("invalid host name")
        host = name.decode("ascii").lower().rstrip(".")
        if not colon:
            port_text = b""
        elif not port_text:
            raise TargetError("empty port")
        if not host:
            raise TargetError("invalid host name")
    if port_text:
        return host, _port(port_text)
    if default_port is None:
        raise TargetError("a port is required")
    return host, default_port


def parse_absolute(target: bytes) -> Target:
    """`http://authority[/path][?query]` (the scheme case-insensitively)."""
    if target[:7].lower() != b"http://":
        if target[:8].lower() == b"https://":
            raise TargetError("https URLs must be requested with CONNECT")
        if target.startswith(b"/"):
            raise TargetError("a proxy request needs an absolute URL (http://host/path)")
        raise TargetError("unsupported URL scheme")
    rest = target[7:]
    found = _AUTHORITY_END.search(rest)
    end = len(rest) if found is None else found.start()
    host, port = _host_and_port(rest[:end], 80)
    path = rest[end:].partition(b"#")[0]
    if not path:
        path = b"/"
    elif path.startswith(b"?"):
        path = b"/" + path
    return Target(host, port, path)


def parse_authority(target: bytes) -> Target:
    """CONNECT's `host:port`; the port is required."""
    host, port = _host_and_port(target, None)
    return Target(host, port, b"")
