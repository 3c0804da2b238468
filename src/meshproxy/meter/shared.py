"""The Redis meter: every node adds its counted bytes to shared counters, once a flush
interval, in one script call (pipelined: one round trip for every account of the batch).

Exactly once: each flush carries this meter's (node id, sequence number); a batch whose
reply was lost is sent again with the same number and the script skips what it already
applied. A failed flush keeps the batch and everything counted since (nothing is lost
while Redis is down; `health` says so). Folding into the store is `fold.py`'s job.

Live usage across nodes: the script answers each account's cumulative counter (bytes
ever counted by any node). The store keeps, per account, how many of those it already
folded (`folded_bytes`), so a node's live figure is
    loaded usage + (cumulative - folded at load) + this node's unsent bytes,
exact without reading the store again (see proxy/directory.py `apply_shared`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshproxy.domain.accounts import UsageDelta
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.keys import UsageKeys, field
from meshproxy.meter.local import UsageBuffer, UsageSink, _today
from meshproxy.meter.schedule import FlushSchedule

log = logging.getLogger("meshproxy.meter")

# KEYS: day hash, days set, cumulative hash, this node's sequence marker.
# ARGV: day, sequence, n, then n (field, bytes) pairs for the day hash, then
# (account, bytes) pairs for the cumulative hash. Returns {applied, cumulative...}.
FLUSH_SCRIPT = """
local seq = tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[4]) or '0')
local n = tonumber(ARGV[3])
local applied = 0
if seq > last then
  applied = 1
  redis.call('SET', KEYS[4], ARGV[2], 'EX', 86400)
  for i = 0, n - 1 do
    redis.call('HINCRBY', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
  end
  redis.call('SADD', KEYS[2], ARGV[1])
end
local out = {applied}
local j = 4 + 2 * n
while j < #ARGV do
  if applied == 1 then
    table.insert(out, redis.call('HINCRBY', KEYS[3], ARGV[j], ARGV[j + 1]))
  else
    table.insert(out, tonumber(redis.call('HGET', KEYS[3], ARGV[j]) or '0'))
  end
  j = j + 2
end
return out
"""


def per_account(deltas: Sequence[UsageDelta]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for delta in deltas:
        totals[delta.account_id] = totals.get(delta.account_id, 0) + delta.nbytes
        if delta.parent_id is not None:
            totals[delta.parent_id] = totals.get(delta.parent_id, 0) + delta.nbytes
    return totals


class RedisMeter:
    def __init__(
        self,
        redis: Redis,
        keys: UsageKeys,
        *,
        interval: float = 1.0,
        lock: asyncio.Lock | None = None,
        today: Callable[[], date] = _today,
        fallback: UsageSink | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lock = lock or asyncio.Lock()
        self._today = today
        self._fallback = fallback  # where usage goes at stop if Redis is still down
        self._script = redis.register_script(FLUSH_SCRIPT)
        self._buffer = UsageBuffer()
        self._node = keys.node(uuid.uuid4().hex)
        self._sequence = 0
        self._batch: tuple[int, date, list[UsageDelta]] | None = None
        self._schedule = FlushSchedule(self.flush, interval)
        self._changed: set[int] = set()
        self.cumulative: dict[int, int] = {}  # latest known shared counter per account
        self.health = BackendHealth("Redis (usage counters)")
        self.last_flush = 0.0  # loop time of the last successful flush (for flush lag)
        self.add = self._buffer.add  # the hot path: one bound-method call, no wrapper

    def pending_totals(self) -> Mapping[int, int]:
        return self._buffer.pending_totals()

    def shared_totals(self) -> Mapping[int, int]:
        return self.cumulative

    def take_changed(self) -> dict[int, int]:
        """Cumulative counters that changed since the last call."""
        changed = {i: self.cumulative[i] for i in self._changed}
        self._changed.clear()
        return changed

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        """Read the cumulative counters of `account_ids` (after loading them from the store,
        so the counters include at least what the store had folded)."""
        ids = sorted(set(account_ids))
        if not ids:
            return
        try:
            values = await self._redis.hmget(self._keys.cumulative, [str(i) for i in ids])
        except RedisError as error:
            self.health.failed(error, "reading shared counters")
            return
        self.health.ok()
        for account_id, value in zip(ids, values, strict=True):
            self._set(account_id, int(value or 0))

    def _set(self, account_id: int, value: int) -> None:
        if self.cumulative.get(account_id) != value:
            self.cumulative[account_id] = value
            self._changed.add(account_id)

    async def start(self) -> None:
        await self._schedule.start()

    async def flush(self) -> None:
        async with self._lock:
            retrying = self._batch is not None
            await self._send()
            if retrying:  # Redis is back: what was counted meanwhile goes now too
                await self._send()

    async def _send(self) -> None:
        """Send the held batch (one whose flush failed), or a new one of what was counted."""
        if self._batch is None:
            deltas = self._buffer.take()
            if not deltas:
                self._buffer.committed()
                self.last_flush = asyncio.get_running_loop().time()
                return
            self._sequence += 1
            self._batch = (self._sequence, self._today(), deltas)
        sequence, day, deltas = self._batch
        totals = per_account(deltas)
        args: list[Any] = [day.isoformat(), sequence, len(deltas)]
        for delta in deltas:
            args += [field(delta.account_id, delta.parent_id), delta.nbytes]
        for account_id, nbytes in totals.items():
            args += [account_id, nbytes]
        keys = [self._keys.day(day), self._keys.days, self._keys.cumulative, self._node]
        try:
            reply = await self._script(keys=keys, args=args)
        except RedisError as error:
            self.health.failed(error, "flushing usage")
            raise
        self.health.ok()
        self._batch = None
        self._buffer.committed()
        self.last_flush = asyncio.get_running_loop().time()
        for account_id, value in zip(totals, reply[1:], strict=True):
            self._set(account_id, int(value))

    async def stop(self, attempts: int = 5) -> None:
        if not await self._schedule.stop(attempts) or self._buffer:
            await self._spill()

    async def _spill(self) -> None:
        """Redis is still down at stop: write what is left straight to the store."""
        if not self._buffer or self._fallback is None:
            if self._buffer:
                log.error("usage not written at stop: %s", self._buffer.pending_totals())
            return
        self._buffer.failed()
        self._batch = None
        deltas = self._buffer.take()
        try:
            await asyncio.to_thread(self._fallback.record_usage, deltas, self._today())
        except Exception:
            self._buffer.failed()
            log.error("usage not written at stop: %s", self._buffer.pending_totals())
            return
        self._buffer.committed()
        log.error("Redis unreachable at stop: wrote %d accounts' usage to the store", len(deltas))
