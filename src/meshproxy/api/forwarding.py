"""Who sent a request and over which scheme, trusting X-Forwarded-* only from the
configured front proxies (uvicorn's own proxy-header handling is off)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

from meshproxy.domain.addresses import normalise_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Forwarding:
    def __init__(self, trusted: Iterable[str]) -> None:
        self._trusted: list[Network] = [ipaddress.ip_network(net) for net in trusted]

    def _is_trusted(self, address: str | None) -> bool:
        if address is None:
            return False
        ip = ipaddress.ip_address(address)
        return any(ip.version == net.version and ip in net for net in self._trusted)

    def _peer(self, scope: Scope) -> str | None:
        client = scope.get("client")
        return normalise_ip(client[0]) if client else None

    def client_address(self, scope: Scope) -> str:
        """The client's IP: the peer, or behind trusted proxies the nearest untrusted hop
        of X-Forwarded-For (the ban is per client, not per front proxy)."""
        peer = self._peer(scope)
        if not self._is_trusted(peer):
            return peer or "unknown"
        forwarded = Headers(scope=scope).get("x-forwarded-for", "")
        for hop in reversed(forwarded.split(",")):
            address = normalise_ip(hop)
            if address is None:
                break
            if not self._is_trusted(address):
                return address
        return peer or "unknown"

    def scheme(self, scope: Scope) -> str:
        """ "https" or "http" as the client used it."""
        if self._is_trusted(self._peer(scope)):
            proto = Headers(scope=scope).get("x-forwarded-proto", "")
            first = proto.split(",")[0].strip().lower()
            if first in ("http", "https"):
                return first
        return "https" if scope.get("scheme") == "https" else "http"
