"""Change notifications on a Redis pub/sub channel: a wake-up, not the data.

A message is a JSON list of [kind, subject] (and for a ban that starts, [kind, ip,
until]); a proxy node that hears one polls the store's change feed at once instead of
waiting for its next tick, and adopts a ban straight away. A missed message costs only
latency: the change feed is polled anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


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
