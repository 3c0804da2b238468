"""Sticky sessions: the same account + session id leaves through the same egress for
`sesstime` minutes, on every node of a fleet, with no shared store (design.md).

The egress is derived, not stored: rendezvous hashing (highest random weight) of
(account id, session id, window index, member) over the pool's eligible members, with a
keyed-by-nothing hash (BLAKE2b) so every node computes the same ranking. A member that
left the pool (or is filtered out: another country, X-ProxyMesh-Not-IP) just drops out
of the ranking and the next one wins, on every node alike; the others keep their place.

The window: a session's time is cut into windows of `sesstime` minutes on a grid offset
by a hash of (account, session), the same on every node. A node that first sees a
session at time t takes the window t falls in and holds it for `sesstime` minutes from
t (so on one node a session keeps its egress a full `sesstime` from its first use, and
gets a new one at the first use after that). Nodes that first see the session within
the same grid window agree on its egress for the whole of it; a node that first sees it
after a grid boundary starts on the next window's egress.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar, cast

from meshproxy.domain.steering import DEFAULT_SESSION_MINUTES
from meshproxy.proxy.core.options import RequestOptions

MAX_SESSIONS: Final = 100_000  # sessions remembered per pool (oldest dropped first)

SessionKey = tuple[int, str, int]  # (account id, session id, minutes)


def _weight(*parts: object) -> int:
    data = "\0".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def window_index(key: SessionKey, now: float) -> int:
    """The grid window `now` falls in for this session (the same on every node)."""
    account, session, minutes = key
    period = minutes * 60
    offset = _weight(account, session) % period
    return int((now - offset) // period)


def ranked_first(key: SessionKey, window: int, members: Sequence[M]) -> M:
    """The rendezvous winner of `members` for this session's window."""
    account, session, _ = key
    return max(members, key=lambda m: _weight(account, session, window, m.label))


class Member(Protocol):
    """A pool member (egress.Egress) as the ranking sees it."""

    @property
    def label(self) -> str: ...  # what names it on every node: address, prefix or name


M = TypeVar("M", bound=Member)


class StickySessions:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall time: the nodes of a fleet share it
        # key -> (window index, held until, the members it was ranked over, the winner)
        self._held: dict[SessionKey, tuple[int, float, Sequence[Member], Member]] = {}

    def choose(self, options: RequestOptions, members: Sequence[M]) -> M:
        """The member this request's session leaves through (`options.session` is set)."""
        assert options.session is not None
        minutes = options.session_minutes or DEFAULT_SESSION_MINUTES
        key = (options.session_account, options.session, minutes)
        now = self.clock()
        held = self._held.get(key)
        if held is not None and now < held[1]:
            window, until, ranked, kept = held
            if ranked == members:  # the usual case: one dict lookup, no hashing
                return cast(M, kept)
        else:
            window, until = window_index(key, now), now + minutes * 60
            if held is not None:
                del self._held[key]  # re-inserted last: the oldest are dropped first
            elif len(self._held) >= MAX_SESSIONS:
                self._held.pop(next(iter(self._held)))
        winner = ranked_first(key, window, members)
        self._held[key] = (window, until, members, winner)
        return winner

    def address_weight(self, options: RequestOptions, label: str) -> int:
        """A number fixed for this session's current window and a prefix (`label`): which
        address of the prefix the session keeps (egress.py), the same on every node."""
        assert options.session is not None
        minutes = options.session_minutes or DEFAULT_SESSION_MINUTES
        key = (options.session_account, options.session, minutes)
        held = self._held.get(key)
        window = held[0] if held is not None else window_index(key, self.clock())
        return _weight(options.session_account, options.session, window, label, "address")
