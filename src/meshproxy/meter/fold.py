"""Folding: shared usage counters move from Redis into the store, each byte exactly once.

1. claim: one script renames every meter's day hash to a fresh batch key and records it
   in the pending set (atomic with the meters' flushes, so no increment is split or lost);
2. fold: every claimed batch (and any a dead folder left pending) goes to the store in one
   transaction; each batch names its meter and flush numbers, and the store adds none it
   has seen (`store.folds.fold`), so a batch folded twice, or one Redis brings back from an
   old snapshot, or one a node already wrote itself, counts once;
3. confirm: each meter learns up to which flush number the store has it (`node:<meter>`
   field `folded`), so the node can drop those flushes from its journal;
4. release: the batch keys are deleted and leave the pending set.

A folder killed anywhere leaves either pending batches (folded again by the next run,
skipped by the store if step 2 had committed) or nothing to do. Any number of folders may
run at once. Synchronous (Redis and the store both block): run it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.folds import FoldBatch, FoldOutcome
from meshproxy.domain.stats import StatDelta
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.keys import STAT, UsageKeys, decoded, parse_field, parse_stat_field
from meshproxy.meter.sink import FoldSink

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a node that uses it
    from redis import Redis

log = logging.getLogger("meshproxy.meter.fold")

# KEYS: days set, pending set, generation. ARGV: day key prefix, batch key prefix, claim
# id. Returns {generation or '', claimed batch keys...}.
CLAIM_SCRIPT = """
local claimed = {redis.call('GET', KEYS[3]) or ''}
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

# KEYS: a meter's marker. ARGV: the flush number the store has everything up to.
# Only a live marker is raised: a missing one means Redis lost it, and the meter must see
# that (its flush script compares the marker with what it had acknowledged).
CONFIRM_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if tonumber(redis.call('HGET', KEYS[1], 'folded') or '0') < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'folded', ARGV[1])
  end
end
return 0
"""

KEEP_METER_FOLDS = timedelta(days=7)  # far longer than any flush stays unfolded


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
        self._confirm = redis.register_script(CONFIRM_SCRIPT)
        self._last_prune: datetime | None = None

    def fold(self) -> FoldOutcome:
        """Fold what earlier runs left pending, and everything counted until now."""
        pending = [decoded(b) for b in cast(set[Any], self._redis.smembers(self._keys.pending))]
        claimed = self._claim(
            keys=[self._keys.days, self._keys.pending, self._keys.generation],
            args=[self._keys.day(""), self._keys.batch_prefix, uuid.uuid4().hex],
        )
        generation = decoded(claimed[0]) or None
        keys = sorted(set(pending) | {decoded(b) for b in claimed[1:]})
        batches = self._read(keys)
        outcome = self._store.fold(batches, self._clock(), generation)
        if outcome.folded_through:
            pipe = self._redis.pipeline(transaction=False)
            for meter_id, through in outcome.folded_through.items():
                self._confirm(keys=[self._keys.node(meter_id)], args=[through], client=pipe)
            pipe.execute()
        if keys:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(*keys)
            pipe.srem(self._keys.pending, *keys)
            pipe.execute()
        self._prune()
        return outcome

    def _read(self, keys: list[str]) -> list[FoldBatch]:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        batches = []
        for key, counters in zip(keys, pipe.execute(), strict=True):
            if counters:  # empty: another folder released it meanwhile
                batches.append(self._batch(key, counters))
        return batches

    def _batch(self, key: str, counters: dict[Any, Any]) -> FoldBatch:
        day, meter_id = self._keys.batch_source(key)
        marks: dict[str, str] = {}
        deltas = []
        stats = []
        for name, value in counters.items():
            text = decoded(name)
            if text.startswith("#"):
                marks[text] = decoded(value)
            elif text.startswith(STAT):
                account_id, stat = parse_stat_field(text)
                stats.append(StatDelta(account_id, stat, int(value)))
            else:
                account_id, parent_id = parse_field(text)
                deltas.append(UsageDelta(account_id, parent_id, int(value)))
        return FoldBatch(  # a legacy batch (no marks) is flush 1 of its own meter
            meter_id,
            int(marks.get("#first", 1)),
            int(marks.get("#last", 1)),
            day,
            tuple(deltas),
            marks.get("#gen"),
            tuple(stats),
        )

    def _prune(self) -> None:
        now = self._clock()
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            self._store.prune(now - KEEP_METER_FOLDS)
            self._last_prune = now


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
