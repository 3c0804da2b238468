"""A meter in front of another that also sums the bytes it sees (one per proxy listener,
for the per-proxy byte metrics); everything else goes to the meter behind it."""

from __future__ import annotations

from collections.abc import Mapping

from meshproxy.meter.base import Meter
from meshproxy.meter.health import BackendHealth


class CountingMeter:
    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.nbytes = 0
        self._add = meter.add
        self.count_request = meter.count_request  # not summed here: straight through

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        self.nbytes += nbytes
        self._add(account_id, parent_id, nbytes)

    @property
    def health(self) -> BackendHealth:
        return self.meter.health

    @property
    def last_flush(self) -> float:
        return self.meter.last_flush

    def pending_totals(self) -> Mapping[int, int]:
        return self.meter.pending_totals()

    async def start(self) -> None:
        await self.meter.start()

    async def flush(self) -> None:
        await self.meter.flush()

    async def stop(self) -> None:
        await self.meter.stop()
