"""A meter that counts nothing: for measuring what metering costs (benchmarks only)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from meshproxy.meter.health import BackendHealth


class NullMeter:
    def __init__(self) -> None:
        self.health = BackendHealth("nothing (no metering)")
        self.generation: str | None = None
        self.last_flush = 0.0

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        pass

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        pass

    async def current_generation(self) -> str | None:
        return None

    def pending_totals(self) -> Mapping[int, int]:
        return {}

    def shared_totals(self) -> Mapping[int, int]:
        return {}

    def take_changed(self) -> dict[int, int]:
        return {}

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def stop(self) -> None:
        pass
