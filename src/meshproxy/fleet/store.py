"""The store of a fleet: the ban in Redis and every commit announced on the change channel,
both passed into the `Store` (store/store.py composes them; nothing is overridden).

While Redis is unreachable the ban falls back to the store's own tables (and is logged);
bans are read from both, so one decided during an outage still holds afterwards. A ban
decided in Redis is written to the store too, so it outlives a Redis restarted empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from meshproxy.config import Settings
from meshproxy.fleet.connect import sync_client
from meshproxy.store import Store
from meshproxy.store.engine import make_engine

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a store that uses it
    from redis import Redis


def fleet_store(engine: Engine, redis: Redis, prefix: str) -> Store:
    """A store whose ban lives in `redis` and whose commits are announced there."""
    # Imported here: a node without Redis (open_store's other branch) never loads them.
    from meshproxy.fleet.bans import RedisBans
    from meshproxy.fleet.link import RedisLink
    from meshproxy.fleet.notify import RedisNotifier

    link = RedisLink(redis)
    return Store(engine, notifier=RedisNotifier(link, prefix), shared_bans=RedisBans(link, prefix))


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The node's store: shared through Redis when `redis_url` is set."""
    if not settings.redis_url:
        return Store.open(settings.database_url, migrate=migrate)
    store = fleet_store(
        make_engine(settings.database_url), sync_client(settings.redis_url), settings.shared.prefix
    )
    if migrate:
        store.migrate()
    return store
