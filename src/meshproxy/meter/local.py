"""In-process meter: sums per account in memory, flushed to the store at least once a second.

Flushes run in the caller-supplied executor (store calls block). A failed flush puts the
bytes back, so nothing is dropped; the next tick retries. `lock` is shared with whoever
reloads usage from the store, so a reload never overlaps a flush (see `pending_totals`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, date, datetime
from typing import Protocol

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import BYTES, HOST, MAX_HOSTS, OTHER_HOSTS, REQUESTS, StatDelta
from meshproxy.domain.usage import bytes_per_account
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.schedule import FlushSchedule

log = logging.getLogger("meshproxy.meter")

Key = tuple[int, int | None]


class UsageSink(Protocol):
    """Where flushed usage goes (`store.usage`; the meter must not import the store layer)."""

    def record(
        self, deltas: Sequence[UsageDelta], day: date, stats: Sequence[StatDelta] = ()
    ) -> None: ...


StatKey = tuple[int, str]


class UsageBuffer:
    """Pure bookkeeping: counted bytes and request statistics (domain/stats.py), the batch
    being written, and rollback on failure. Both ride the same batch, so they are written
    (and folded) together, exactly as often."""

    def __init__(self) -> None:
        self._counts: defaultdict[Key, int] = defaultdict(int)
        self._in_flight: dict[Key, int] = {}
        self._stats: defaultdict[StatKey, int] = defaultdict(int)
        self._stats_in_flight: dict[StatKey, int] = {}
        # Hosts counted per account since the last take: at most MAX_HOSTS a flush, the
        # rest go to OTHER_HOSTS (a client of many hosts cannot swell a flush).
        self._hosts: defaultdict[int, int] = defaultdict(int)

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        self._counts[(account_id, parent_id)] += nbytes

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        """One request of the account ended: its outcome counter (domain/stats.py), and
        its bytes, to `host` too."""
        stats = self._stats
        stats[(account_id, REQUESTS)] += 1
        stats[(account_id, outcome)] += 1
        if nbytes > 0:
            stats[(account_id, BYTES)] += nbytes
            if host:
                key = (account_id, HOST + host)
                if key not in stats:
                    if self._hosts[account_id] >= MAX_HOSTS:
                        key = (account_id, OTHER_HOSTS)
                    else:
                        self._hosts[account_id] += 1
                stats[key] += nbytes

    def take(self) -> list[UsageDelta]:
        """Start a write: the counted bytes (and statistics, `taken_stats`) move to the
        in-flight batch."""
        if self._in_flight or self._stats_in_flight:
            raise RuntimeError("a flush is already in flight")
        batch, self._counts = self._counts, defaultdict(int)
        self._in_flight = {k: v for k, v in batch.items() if v}
        self._stats_in_flight, self._stats = dict(self._stats), defaultdict(int)
        self._hosts = defaultdict(int)
        return [UsageDelta(a, p, n) for (a, p), n in self._in_flight.items()]

    def taken_stats(self) -> list[StatDelta]:
        """The statistics of the batch `take` started."""
        return [StatDelta(a, name, n) for (a, name), n in self._stats_in_flight.items()]

    def committed(self) -> None:
        self._in_flight = {}
        self._stats_in_flight = {}

    def failed(self) -> None:
        for key, nbytes in self._in_flight.items():
            self._counts[key] += nbytes
        for stat, value in self._stats_in_flight.items():
            self._stats[stat] += value
        self._in_flight = {}
        self._stats_in_flight = {}

    def pending_totals(self) -> dict[int, int]:
        return bytes_per_account(
            UsageDelta(account_id, parent_id, nbytes)
            for source in (self._counts, self._in_flight)
            for (account_id, parent_id), nbytes in source.items()
        )

    def __bool__(self) -> bool:
        return (
            any(self._counts.values())
            or bool(self._in_flight)
            or bool(self._stats)
            or bool(self._stats_in_flight)
        )


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
