"""Destination policy: private, loopback, link-local and other special ranges are refused
unless the operator allows them (`proxy.allow_destinations`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

_CACHE_MAX = 4096


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
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self._allowed):
            return True
        return ip.is_global and not ip.is_multicast
