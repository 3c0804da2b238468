"""In-process meter: sums per account in memory, flushed to the store at least once a second.

Flushes run in the caller-supplied executor (store calls block). A failed flush puts the
bytes back, so nothing is dropped; the next tick retries. `lock` is shared with whoever
reloads usage from the store, so a reload never overlaps a flush (see `pending_totals`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, date, datetime
from typing import Protocol

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import StatDelta
from meshproxy.meter.buffer import UsageBuffer
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.schedule import FlushSchedule

log = logging.getLogger("meshproxy.meter")


class UsageSink(Protocol):
    """Where flushed usage goes (`store.usage`; the meter must not import the store layer)."""

    def record(
        self, deltas: Sequence[UsageDelta], day: date, stats: Sequence[StatDelta] = ()
    ) -> None: ...


def _today() -> date:
    return datetime.now(UTC).date()


class LocalMeter:
    def __init__(
        self,
        store: UsageSink,
        *,
        interval: float = 1.0,
        executor: Executor | None = None,
        lock: asyncio.Lock | None = None,
        today: Callable[[], date] = _today,
    ) -> None:
        self._store = store
        self._executor = executor
        self._lock = lock or asyncio.Lock()
        self._today = today
        self._buffer = UsageBuffer()
        self._schedule = FlushSchedule(self.flush, interval)
        self.health = BackendHealth("the store (usage)")
        self.last_flush = 0.0  # loop time of the last successful flush (for flush lag)
        self.add = self._buffer.add  # the hot path: one bound-method call, no wrapper
        self.count_request = self._buffer.count_request  # once per request, at its end

    def pending_totals(self) -> Mapping[int, int]:
        return self._buffer.pending_totals()

    async def start(self) -> None:
        await self._schedule.start()

    async def flush(self) -> None:
        async with self._lock:
            deltas = self._buffer.take()
            stats = self._buffer.taken_stats()
            loop = asyncio.get_running_loop()
            if not deltas and not stats:
                self._buffer.committed()
                self.last_flush = loop.time()
                return
            day = self._today()
            try:
                await loop.run_in_executor(
                    self._executor, self._store.record, deltas, day, stats
                )
            except BaseException as error:
                self._buffer.failed()
                self.health.failed(error, f"writing usage of {len(deltas)} accounts")
                raise
            self.health.ok()
            self._buffer.committed()
            self.last_flush = loop.time()

    async def stop(self, attempts: int = 5) -> None:
        if not await self._schedule.stop(attempts) and self._buffer:
            log.error("usage not written at stop: %s", self._buffer.pending_totals())
