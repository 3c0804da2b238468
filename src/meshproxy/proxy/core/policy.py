"""Destination policy: private, loopback, link-local and other special ranges are refused
unless the operator allows them (`proxy.allow_destinations`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

_CACHE_MAX: Final = 4096


class DestinationPolicy:
    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in allowed]
        self._cache: dict[str, bool] = {}

    def permits(self, address: str) -> bool:
        verdict = self._cache.get(address)
        if verdict is None:
            verdict = self._decide(address)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[address] = verdict
        return verdict

    def _decide(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(ip)
            if embedded is not None and not self._decide(str(embedded)):
                return False  # NAT64, 6to4 and Teredo reach the IPv4 address inside
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
        if any(ip in network for network in self._allowed):
            return True
        return ip.is_global and not ip.is_multicast


_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server part is public anyway
    return None
