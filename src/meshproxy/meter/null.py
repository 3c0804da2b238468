"""A meter that counts nothing: for measuring what metering costs (benchmarks only)."""

from __future__ import annotations

from collections.abc import Mapping

from meshproxy.meter.health import BackendHealth


class NullMeter:
    def __init__(self) -> None:
        self.health = BackendHealth("nothing (no metering)")
        self.last_flush = 0.0

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        pass

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        pass

    def pending_totals(self) -> Mapping[int, int]:
        return {}

    async def start(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def stop(self) -> None:
        pass
