"""Slow credential verifications under way: a cap on how many, each shared by every caller.

A proxy node verifies credentials it has not seen before with argon2 in executor threads.
Without a bound, a flood of new or wrong credentials (from any number of client IPs) queues
unbounded argon2 work: every new client waits behind it, and so does whatever else shares
the executor. Here at most `limit` distinct verifications are under way (queued or
running); a request for the same key while one is under way shares it (no second argon2:
a client opening many connections with new credentials costs one check), and beyond the
limit the caller is refused at once. Thread-safe: taken on the event loop, run in threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class SharedVerification:
    """One verification and the answer everyone who took it waits for."""

    __slots__ = ("done", "found", "key", "result", "started", "taken_at")

    def __init__(self, key: Hashable, taken_at: float) -> None:
        self.key = key
        self.taken_at = taken_at
        self.started = False
        self.done = threading.Event()
        self.result = False
        # What the verification learnt on the way, for every caller (the account as the
        # store holds it, when a proxy read it through: proxy/core/readthrough.py).
        self.found: object = None


class VerificationSlots:
    def __init__(self, limit: int, abandoned_after: float = 60.0) -> None:
        self.limit = limit
        # A verification taken but never started this long after (its caller went away
        # before scheduling it) stops holding its place.
        self.abandoned_after = abandoned_after
        self._under_way: dict[Hashable, SharedVerification] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._under_way)

    def take(self, key: Hashable, now: float) -> SharedVerification | None:
        """The verification of `key` to wait for: the one under way, or a new one if fewer
        than `limit` are (None: no place; the caller refuses without verifying)."""
        with self._lock:
            shared = self._under_way.get(key)
            if shared is not None:
                return shared
            if len(self._under_way) >= self.limit:
                horizon = now - self.abandoned_after
                for stale in [v for v in self._under_way.values()
                              if not v.started and v.taken_at <= horizon]:
                    del self._under_way[stale.key]
                if len(self._under_way) >= self.limit:
                    return None
            shared = self._under_way[key] = SharedVerification(key, now)
            return shared

    def run(self, shared: SharedVerification, verify: Callable[[], bool]) -> bool:
        """The first caller runs `verify` (then the place is free); the others wait for its
        answer. A `verify` that raises answers False to the others."""
        with self._lock:
            first = not shared.started
            shared.started = True
        if not first:
            shared.done.wait()
            return shared.result
        try:
            shared.result = verify()
        finally:
            with self._lock:
                if self._under_way.get(shared.key) is shared:
                    del self._under_way[shared.key]
            shared.done.set()
        return shared.result
