"""The Store with the ban in Redis and every commit announced on the change channel.

While Redis is unreachable the ban falls back to the store's own tables (and is logged);
bans are read from both, so one decided during an outage still holds afterwards. A ban
decided in Redis is written to the store too, so it outlives a Redis restarted empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine

from meshproxy.config import Settings
from meshproxy.domain.bans import BanPolicy
from meshproxy.meter.health import BackendHealth
from meshproxy.shared import notify
from meshproxy.shared.bans import RedisBans
from meshproxy.shared.connect import sync_client
from meshproxy.store import Store, StoreUnavailable
from meshproxy.store.engine import make_engine
from meshproxy.store.errors import Conflict
from meshproxy.store.store import ChangeRecord

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a store that uses it
    from redis import Redis

log = logging.getLogger("meshproxy.shared")
T = TypeVar("T")

RECHECK_INTERVAL = 1.0  # seconds between pings of a Redis last found unreachable


class SharedStore(Store):
    def __init__(self, engine: Engine, redis: Redis, prefix: str) -> None:
        super().__init__(engine)
        self.redis = redis
        self.redis_bans = RedisBans(redis, prefix)
        self.channel = notify.channel(prefix)
        self.redis_health = BackendHealth("Redis (bans, notifications)")
        self._last_recheck = 0.0

    def _redis(self, doing: str, work: Callable[[], T], fallback: Callable[[], T]) -> T:
        from redis.exceptions import RedisError

        try:
            result = work()
        except RedisError as error:
            self.redis_health.failed(error, doing)
            return fallback()
        self.redis_health.ok()
        return result

    def _recheck_redis(self) -> None:
        """Ping a Redis last found down (at most once a second), from calls every node makes
        regularly (the change feed poll, the readiness probe): its health comes back with
        it, not at the next ban or edit, which may be long after."""
        now = time.monotonic()
        if self.redis_health.up or now - self._last_recheck < RECHECK_INTERVAL:
            return
        self._last_recheck = now
        self._redis("checking Redis", self.redis.ping, lambda: None)

    def ping(self) -> None:
        self._recheck_redis()
        super().ping()

    def changes_since(self, change_id: int, limit: int = 10_000) -> list[ChangeRecord]:
        self._recheck_redis()
        return super().changes_since(change_id, limit)

    def _publish(self, notes: list[notify.Note]) -> None:
        def publish() -> None:
            self.redis.publish(self.channel, notify.encode(notes))

        self._redis("announcing changes", publish, lambda: None)

    def changed(self, notes: list[tuple[str, str]]) -> None:
        self._publish([notify.Note(kind, subject) for kind, subject in notes])

    def record_auth_failure(self, ip: str, at: float, policy: BanPolicy) -> float | None:
        until = self._redis(
            "counting an authentication failure",
            lambda: self.redis_bans.record_failure(ip, at, policy),
            lambda: super(SharedStore, self).record_auth_failure(ip, at, policy),
        )
        if until is not None:
            self._publish([notify.Note("ban", ip, until)])  # adopted at once by every node
            try:  # and in the store: it outlives Redis, and reaches nodes that missed it
                super().record_ban(ip, until)
            except (StoreUnavailable, Conflict):
                log.warning("ban of %s not written to the store (down, or written meanwhile)", ip)
        return until

    def record_auth_success(self, ip: str, at: float | None = None) -> None:
        self._redis(
            "resetting a failure count",
            lambda: self.redis_bans.record_success(ip, at),
            lambda: super(SharedStore, self).record_auth_success(ip, at),
        )

    def record_ban(self, ip: str, until: float, decided_at: float | None = None) -> bool:
        """A ban decided by one node's own count: in the store, and announced with its end
        so every node adopts it without a poll."""
        written = super().record_ban(ip, until, decided_at)
        if written:
            self._publish([notify.Note("ban", ip, until)])
        return written

    def ban_until(self, ip: str, now: float) -> float | None:
        shared = self._redis(
            "reading a ban", lambda: self.redis_bans.ban_until(ip, now), lambda: None
        )
        return shared if shared is not None else super().ban_until(ip, now)

    def active_bans(self, now: float) -> dict[str, float]:
        shared: dict[str, float] = self._redis(
            "reading bans", lambda: self.redis_bans.active(now), lambda: {}
        )
        return {**super().active_bans(now), **shared}

    def auth_failure_counts(self, since: float) -> dict[str, int]:
        """Redis's counts; the database's for addresses Redis has none of (counted there
        while Redis was down)."""
        shared: dict[str, int] = self._redis(
            "reading failure counts", lambda: self.redis_bans.failure_counts(since), lambda: {}
        )
        return {**super().auth_failure_counts(since), **shared}

    def unban(self, ip: str) -> bool:
        shared = self._redis("lifting a ban", lambda: self.redis_bans.unban(ip), lambda: False)
        return super().unban(ip) or shared


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The node's store: shared through Redis when `redis_url` is set."""
    if not settings.redis_url:
        return Store.open(settings.database_url, migrate=migrate)
    store = SharedStore(
        make_engine(settings.database_url), sync_client(settings.redis_url), settings.shared.prefix
    )
    if migrate:
        store.migrate()
    return store
