"""Redis clients with bounded timeouts: a node never hangs on an unreachable Redis.

A command that meets a dead pooled connection (Redis restarted since it was opened) is
sent once more on a fresh one, so a restart is not reported as an outage. Every script
and command meshproxy sends is safe to repeat (flushes carry their number, folds claim
again, confirmations only raise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis is the `redis` extra: imported only when a client is made
    import redis
    import redis.asyncio

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0


def sync_client(url: str) -> redis.Redis:
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError

    retry = redis.retry.Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT, retry=retry
    )


def async_client(url: str) -> redis.asyncio.Redis:
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError

    retry = redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT, retry=retry
    )
