"""One Redis connection's health, shared by the parts that use it (the ban, the change
notices): a call that fails is logged in `health` and raises `SharedUnavailable`, so the
store's tables stand in for it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from meshproxy.meter.health import BackendHealth
from meshproxy.store.errors import SharedUnavailable

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a node that uses it
    from redis import Redis

T = TypeVar("T")

RECHECK_INTERVAL = 1.0  # seconds between pings of a Redis last found unreachable


class RedisLink:
    def __init__(self, redis: Redis, name: str = "Redis (bans, notifications)") -> None:
        self.redis = redis
        self.health = BackendHealth(name)
        self._last_recheck = 0.0

    def call(self, doing: str, work: Callable[[], T]) -> T:
        from redis.exceptions import RedisError

        try:
            result = work()
        except RedisError as error:
            self.health.failed(error, doing)
            raise SharedUnavailable(f"{doing}: {error}") from error
        self.health.ok()
        return result

    def recheck(self) -> None:
        """Ping a Redis last found down, at most once a second."""
        now = time.monotonic()
        if self.health.up or now - self._last_recheck < RECHECK_INTERVAL:
            return
        self._last_recheck = now
        with contextlib.suppress(SharedUnavailable):  # still down: health says so
            self.call("checking Redis", self.redis.ping)
