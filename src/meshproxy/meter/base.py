"""The interface between the data plane and wherever usage is summed.

`Meter` is what every meter does (count, flush). `SharedCounters` is what only a meter with
counters every node adds to (Redis: meter/shared.py) offers beyond that; `shared_counters`
gives a node its meter's, or `NoSharedCounters` (each node's usage goes to the store alone).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol, runtime_checkable

from meshproxy.meter.health import BackendHealth


class Meter(Protocol):
    @property
    def health(self) -> BackendHealth:
        """Of where the usage goes (the store, or Redis)."""

    @property
    def last_flush(self) -> float:
        """Loop time of the last successful flush."""

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        """Count bytes for an account (and so its parent). Called on the hot path: O(1)."""

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        """One request (or tunnel) of the account ended: its outcome (domain/stats.py), the
        destination host and the bytes it moved, for the daily statistics. O(1)."""

    def pending_totals(self) -> Mapping[int, int]:
        """Bytes counted but not yet in the store, per account (a parent's includes its
        sub-accounts'), so a reload from the store plus these is the live usage."""

    async def start(self) -> None:
        """Begin flushing periodically."""

    async def flush(self) -> None:
        """Write what has been counted; on failure keep it for the next attempt."""

    async def stop(self) -> None:
        """Stop the periodic flush and write everything that is left."""


@runtime_checkable
class SharedCounters(Protocol):
    @property
    def generation(self) -> str | None:
        """The shared counters' generation as last seen (None until known): a node whose
        directory was loaded in another generation reloads it."""

    async def current_generation(self) -> str | None:
        """Ask for the shared counters' generation now (before loading the directory)."""

    def shared_totals(self) -> Mapping[int, int]:
        """Bytes ever counted for each account by every node, for the accounts this meter
        has seen."""

    def take_changed(self) -> dict[int, int]:
        """The `shared_totals` entries that changed since the last call."""

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        """Read the shared counters of these accounts now (after loading them)."""


class NoSharedCounters:
    """The shared counters of a meter that has none: nothing to read, never a generation."""

    generation: str | None = None

    async def current_generation(self) -> str | None:
        return None

    def shared_totals(self) -> Mapping[int, int]:
        return {}

    def take_changed(self) -> dict[int, int]:
        return {}

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        return None


def shared_counters(meter: Meter) -> SharedCounters:
    """The meter's shared counters, if it keeps any."""
    return meter if isinstance(meter, SharedCounters) else NoSharedCounters()
