"""The interface between the data plane and wherever usage is summed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Meter(Protocol):
    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        """Count bytes for an account (and so its parent). Called on the hot path: O(1)."""

    def pending_totals(self) -> Mapping[int, int]:
        """Bytes counted but not yet in the store, per account (a parent's includes its
        sub-accounts'), so a reload from the store plus these is the live usage."""

    async def start(self) -> None:
        """Begin flushing periodically."""

    async def flush(self) -> None:
        """Write what has been counted; on failure keep it for the next attempt."""

    async def stop(self) -> None:
        """Stop the periodic flush and write everything that is left."""
