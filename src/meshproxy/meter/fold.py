"""Folding: shared usage counters move from Redis into the store, each byte exactly once.

1. claim: one script renames every day hash to a fresh batch key and records it in the
   pending set (atomic with the meters' flushes, so no increment is split or lost);
2. fold: the batch's counters go to the store with the batch id, in one transaction
   (`Store.fold_usage` refuses an id it has seen);
3. release: the batch key is deleted and leaves the pending set.

A folder killed anywhere leaves either a pending batch (folded again by the next run,
skipped by the store if step 2 had committed) or nothing to do. Any number of folders may
run at once: claims never overlap, and a batch two folders pick up is folded once.
Synchronous (Redis and the store both block): run it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, cast

from redis import Redis

from meshproxy.domain.accounts import UsageDelta
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.keys import UsageKeys, parse_field

log = logging.getLogger("meshproxy.meter.fold")

# KEYS: days set, pending set. ARGV: day key prefix, batch key prefix, claim id.
CLAIM_SCRIPT = """
local claimed = {}
for _, day in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('SREM', KEYS[1], day)
  local source = ARGV[1] .. day
  if redis.call('EXISTS', source) == 1 then
    local batch = ARGV[2] .. day .. ':' .. ARGV[3]
    redis.call('RENAME', source, batch)
    redis.call('SADD', KEYS[2], batch)
    table.insert(claimed, batch)
  end
end
return claimed
"""

KEEP_FOLDED_IDS = timedelta(days=7)  # far longer than any batch stays pending


class FoldSink(Protocol):
    """The store's side of a fold (the meter must not import the store layer)."""

    def fold_usage(
        self, batch_id: str, deltas: Sequence[UsageDelta], day: date, now: datetime
    ) -> bool: ...

    def prune_folded_batches(self, older_than: datetime) -> None: ...


@dataclass
class FoldResult:
    batches: int = 0
    skipped: int = 0  # batches the store had folded already
    nbytes: int = 0


class UsageFolder:
    def __init__(
        self,
        redis: Redis,
        keys: UsageKeys,
        store: FoldSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._clock = clock
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._last_prune: datetime | None = None

    def fold(self) -> FoldResult:
        """Fold what earlier runs left pending, then everything counted until now."""
        result = FoldResult()
        for batch in sorted(self._pending()):
            self._fold_batch(batch, result)
        claimed = self._claim(
            keys=[self._keys.days, self._keys.pending],
            args=[self._keys.day(""), self._keys.batch_prefix, uuid.uuid4().hex],
        )
        for batch in claimed:
            self._fold_batch(_text(batch), result)
        self._prune()
        return result

    def _pending(self) -> list[str]:
        members = cast(set[Any], self._redis.smembers(self._keys.pending))
        return [_text(b) for b in members]

    def _fold_batch(self, batch: str, result: FoldResult) -> None:
        counters = cast(dict[Any, Any], self._redis.hgetall(batch))
        deltas = []
        for name, value in counters.items():
            account_id, parent_id = parse_field(_text(name))
            deltas.append(UsageDelta(account_id, parent_id, int(value)))
        if deltas:
            folded = self._store.fold_usage(
                self._keys.batch_id(batch), deltas, self._keys.batch_day(batch), self._clock()
            )
            result.batches += 1
            if folded:
                result.nbytes += sum(d.nbytes for d in deltas)
            else:
                result.skipped += 1
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(batch)
        pipe.srem(self._keys.pending, batch)
        pipe.execute()

    def _prune(self) -> None:
        now = self._clock()
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            self._store.prune_folded_batches(now - KEEP_FOLDED_IDS)
            self._last_prune = now


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FoldingTask:
    """A node's folder: every `interval` seconds in a thread, and once more at stop."""

    def __init__(self, folder: UsageFolder, interval: float) -> None:
        self._folder = folder
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.health = BackendHealth("folding usage (Redis -> store)")
        self.last_fold = 0.0  # loop time of the last complete fold

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.fold_once()

    async def fold_once(self) -> None:
        try:
            await asyncio.to_thread(self._folder.fold)
        except Exception as error:  # Redis or the store down: batches stay pending
            self.health.failed(error, "folding")
            return
        self.health.ok()
        self.last_fold = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.fold_once()
