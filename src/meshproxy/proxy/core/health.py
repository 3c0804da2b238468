"""Upstream egress health, without sockets or clocks of its own (times are passed in).

Passive: a failure through an upstream (its connect, its handshake, its own 407 or 5xx
answer to CONNECT) counts against it; `max_failures` in a row take it out of rotation,
and any success resets the count. Active: the node probes every upstream every
`interval` (`due`); one that is out comes back at its first successful probe, and while
probes keep failing they back off (interval, 2x, 4x ... up to `max_backoff`).
Only upstreams are tracked: a local address or prefix is always up.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

Member = TypeVar("Member", bound=Hashable)


@dataclass(slots=True)
class EgressState:
    up: bool = True
    failures: int = 0  # in a row
    failures_total: int = 0
    latency: float | None = None  # seconds to the last successful connect through it
    backoff: float = 0.0  # seconds between probes while it is out
    next_probe: float = 0.0
    last_error: str = ""


class EgressHealth:
    def __init__(
        self, max_failures: int = 3, interval: float = 10.0, max_backoff: float = 300.0
    ) -> None:
        self.max_failures = max_failures
        self.interval = interval
        self.max_backoff = max_backoff
        self.states: dict[Hashable, EgressState] = {}
        self.version = 0  # changes whenever a member goes out or comes back

    def track(self, member: Hashable) -> EgressState:
        state = self.states.get(member)
        if state is None:
            state = self.states[member] = EgressState()
        return state

    def is_up(self, member: Hashable) -> bool:
        state = self.states.get(member)
        return state is None or state.up

    def failed(self, member: Hashable, why: str, now: float, *, probe: bool = False) -> None:
        state = self.track(member)
        state.failures += 1
        state.failures_total += 1
        state.last_error = why
        if state.up and state.failures >= self.max_failures:
            state.up = False
            state.backoff = self.interval
            state.next_probe = now + self.interval
            self.version += 1
        elif not state.up and probe:
            state.backoff = min(state.backoff * 2 or self.interval, self.max_backoff)
            state.next_probe = now + state.backoff
        elif probe:
            state.next_probe = now + self.interval

    def succeeded(
        self, member: Hashable, latency: float, now: float, *, probe: bool = False
    ) -> None:
        state = self.track(member)
        state.failures = 0
        state.latency = latency
        state.last_error = ""
        if probe or not state.up:
            state.next_probe = now + self.interval
        if not state.up:
            state.up = True
            state.backoff = 0.0
            self.version += 1

    def due(self, members: Iterable[Member], now: float) -> list[Member]:
        """The members whose probe is due at `now` (each tracked from its first call)."""
        return [m for m in members if self.track(m).next_probe <= now]
