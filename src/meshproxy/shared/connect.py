"""Redis clients with bounded timeouts: a node never hangs on an unreachable Redis."""

from __future__ import annotations

import redis
import redis.asyncio

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
    )


def async_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
    )
