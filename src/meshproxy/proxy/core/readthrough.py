"""Read-through of credentials a node's directory does not know yet.

The change feed brings a sub-account created (or a password changed) through the API to
every node within a sync interval; a client that uses it at once would meanwhile get 407s
that count toward the ban of its address. So a credential the directory cannot verify is
looked up once in the store before it fails: at most one lookup in flight per username
(the others wait for its answer), and a name the store does not hold either is not looked
up again for `forget_after` seconds or until the feed brings it. The lookup runs inside a
verification's place (`VerificationSlots`), so the cap on argon2 checks bounds lookups too.
Thread-safe: used from the verification threads. The lookup function is the caller's
(the server's store call); this module does no I/O of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Final

from meshproxy.domain.accounts import AccountView

FORGET_AFTER: Final = 1.0  # seconds a username the store does not hold is not looked up again
MAX_MISSING: Final = 10_000  # usernames remembered as missing (oldest dropped first)
WAIT_SECONDS: Final = 10.0  # longest wait for another thread's lookup of the same name


class _Lookup:
    __slots__ = ("done", "view")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.view: AccountView | None = None


class StoreLookups:
    def __init__(
        self,
        lookup: Callable[[str], AccountView | None],
        clock: Callable[[], float],
        forget_after: float = FORGET_AFTER,
    ) -> None:
        self._lookup = lookup  # may raise: an outage answers None and is not remembered
        self._clock = clock
        self._forget_after = forget_after
        self._lock = threading.Lock()
        self._in_flight: dict[str, _Lookup] = {}
        self._missing: dict[str, float] = {}  # username -> looked up again after
        self.lookups = 0  # store reads made (for tests and metrics)

    def fetch(self, username: str) -> AccountView | None:
        """The store's view of `username` now (None: no such account, or the store is
        down)."""
        with self._lock:
            after = self._missing.get(username)
            if after is not None:
                if self._clock() < after:
                    return None
                del self._missing[username]
            pending = self._in_flight.get(username)
            first = pending is None
            if pending is None:
                pending = self._in_flight[username] = _Lookup()
        if not first:
            pending.done.wait(WAIT_SECONDS)
            return pending.view
        found = False
        try:
            self.lookups += 1
            view = self._lookup(username)
            found = True
            pending.view = view if view is not None and view.account.username == username else None
        except Exception:
            pending.view = None
        finally:
            with self._lock:
                del self._in_flight[username]
                if found and pending.view is None:
                    if len(self._missing) >= MAX_MISSING:
                        self._missing.pop(next(iter(self._missing)))
                    self._missing[username] = self._clock() + self._forget_after
            pending.done.set()
        return pending.view

    def forget(self, usernames: Iterable[str]) -> None:
        """The feed brought these names: a later miss looks them up again at once."""
        with self._lock:
            for name in usernames:
                self._missing.pop(name, None)
