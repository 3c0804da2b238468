"""Redis clients with bounded timeouts: a node never hangs on an unreachable Redis.

A command that meets a dead pooled connection (Redis restarted since it was opened) is
sent once more on a fresh one, so a restart is not reported as an outage. Every script
and command meshproxy sends is safe to repeat (flushes carry their number, folds claim
again, confirmations only raise)."""

from __future__ import annotations

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0


def _retry() -> redis.retry.Retry:
    return redis.retry.Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


def _async_retry() -> redis.asyncio.retry.Retry:
    return redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT, retry=_retry()
    )


def async_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=_async_retry(),
    )
