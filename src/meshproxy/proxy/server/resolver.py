"""Destination DNS with a short cache (getaddrinfo gives no TTL; 30 s is a common floor)."""

from __future__ import annotations

import asyncio
import math
import socket
import time

from meshproxy.proxy.core.target import is_ip_literal

CACHE_SECONDS = 30.0
CACHE_MAX = 10_000


class Resolver:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    def cached(self, host: str) -> tuple[str, ...] | None:
        hit = self._cache.get(host)
        if hit is None:
            if not is_ip_literal(host):
                return None
            # An IP literal is its own answer, kept for good (parsing it costs more).
            hit = self._cache[host] = (math.inf, (host,))
            if len(self._cache) > CACHE_MAX:
                self._cache.clear()
        elif hit[0] < time.monotonic():
            return None
        return hit[1]

    async def resolve(self, host: str, port: int) -> tuple[str, ...]:
        """Addresses of `host`, in the resolver's order; raises OSError when there are none."""
        infos = await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise OSError(f"no addresses for {host}")
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[host] = (time.monotonic() + CACHE_SECONDS, addresses)
        return addresses


async def resolve_names(
    loop: asyncio.AbstractEventLoop, names: set[str]
) -> dict[str, tuple[str, ...]]:
    """Addresses of each name (empty when it does not resolve): authenticated hostnames."""

    async def one(name: str) -> tuple[str, tuple[str, ...]]:
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            return name, ()
        return name, tuple(dict.fromkeys(_normal(str(i[4][0])) for i in infos))

    results = await asyncio.gather(*(one(n) for n in names))
    return dict(results)


def _normal(address: str) -> str:
    return address[7:] if address.startswith("::ffff:") and "." in address else address
