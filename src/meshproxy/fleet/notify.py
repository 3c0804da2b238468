"""Change notifications on a Redis pub/sub channel: a wake-up, not the data.

A message is a JSON list of [kind, subject] (and for a ban that starts, [kind, ip,
until]); a proxy node that hears one polls the store's change feed at once instead of
waiting for its next tick, and adopts a ban straight away. A missed message costs only
latency: the change feed is polled anyway.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from meshproxy.fleet.link import RedisLink
from meshproxy.meter.health import BackendHealth
from meshproxy.store.errors import SharedUnavailable


def channel(prefix: str) -> str:
    return f"{prefix}changes"


@dataclass(frozen=True)
class Note:
    kind: str  # "account" | "ban"
    subject: str  # a username or an IP
    until: float | None = None  # a ban that starts: when it ends


def encode(notes: Sequence[Note]) -> str:
    return json.dumps(
        [[n.kind, n.subject] if n.until is None else [n.kind, n.subject, n.until] for n in notes]
    )


def decode(message: bytes | str) -> list[Note]:
    """The notes of a message; an unreadable message yields nothing (a poll still happens)."""
    try:
        items = json.loads(message)
        return [
            Note(str(item[0]), str(item[1]), float(item[2]) if len(item) > 2 else None)
            for item in items
        ]
    except (ValueError, TypeError, IndexError, KeyError):
        return []


class RedisNotifier:
    """The store's `ChangeNotifier` on the channel: a notice Redis does not take is dropped
    (logged in the link's health); the nodes' polls of the feed carry it anyway."""

    def __init__(self, link: RedisLink, prefix: str) -> None:
        self.link = link
        self.channel = channel(prefix)

    @property
    def health(self) -> BackendHealth:
        return self.link.health

    def changed(self, notes: Sequence[tuple[str, str]]) -> None:
        self._publish([Note(kind, subject) for kind, subject in notes])

    def banned(self, ip: str, until: float) -> None:
        self._publish([Note("ban", ip, until)])

    def check(self) -> None:
        self.link.recheck()

    def _publish(self, notes: list[Note]) -> None:
        message = encode(notes)
        with contextlib.suppress(SharedUnavailable):
            self.link.call(
                "announcing changes", lambda: self.link.redis.publish(self.channel, message)
            )
