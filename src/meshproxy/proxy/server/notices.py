"""Change notifications from Redis pub/sub: wake the node's sync at once, adopt bans.

The notification is only a wake-up (the change feed stays the source of truth), so a
message lost while Redis is unreachable costs latency, never correctness; the listener
reconnects every second until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from meshproxy.fleet import notify
from meshproxy.meter.health import BackendHealth

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a node that uses it
    from redis.asyncio import Redis

log = logging.getLogger("meshproxy.proxy")


class ChangeNotices:
    def __init__(
        self, redis: Redis, channel: str, on_notes: Callable[[list[notify.Note]], None]
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._on_notes = on_notes
        self.health = BackendHealth("Redis (change notifications)")

    async def run(self) -> None:
        from redis.exceptions import RedisError

        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.health.ok()
                self._on_notes([])  # (re)subscribed: catch up with anything missed
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_notes(notify.decode(message["data"]))
            except (RedisError, OSError) as error:
                self.health.failed(error, "listening for changes")
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8.2
            await asyncio.sleep(1.0)
