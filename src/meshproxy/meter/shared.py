"""The Redis meter: every node adds its counted bytes to shared counters, once a flush
interval, in one script call (pipelined: one round trip for every account of the batch).

Exactly once, whatever Redis keeps: each meter has an id and numbers its flushes 1, 2,
3...; the store remembers which numbers of which meter it has folded (`store.folds.fold`)
and never adds one twice. A flush whose reply was lost is sent again with the same
number and the script skips it if applied. Every applied flush stays in this meter's
journal until a folder reports it folded (Redis `node:<meter>` field `folded`), so when
Redis restarts empty or from an older snapshot (the script finds this meter's last
number behind what it acknowledged), the node writes the journal to the store itself
and goes on under a new meter id; the store's dedup skips whatever Redis still folds
of the old one. A meter that stops writes its unconfirmed journal the same way: a node
leaves nothing that only Redis holds.

Live usage across nodes: the script answers each account's cumulative counter (bytes
ever counted by any node in this Redis generation). The store keeps, per account, how
many of those it folded (`folded_bytes`), so a node's live figure is
    loaded usage + (cumulative - folded at load) + this node's bytes not in either,
exact without reading the store again (see proxy/core/directory.py `apply_shared`). The
generation changes when Redis lost data; counters restart in a new hash, the store's
`folded_bytes` restart with its first fold, and nodes reload their directory.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.folds import FoldBatch
from meshproxy.domain.stats import StatDelta
from meshproxy.domain.usage import bytes_per_account
from meshproxy.meter.buffer import UsageBuffer
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.keys import UsageKeys, decoded, field, stat_field
from meshproxy.meter.local import _today
from meshproxy.meter.schedule import FlushSchedule
from meshproxy.meter.sink import FoldSink

if TYPE_CHECKING:  # redis is the `redis` extra: imported only by a node that uses it
    from redis.asyncio import Redis

log = logging.getLogger("meshproxy.meter")

# One flush: its day, bytes and request statistics.
Flushed = tuple[date, tuple[UsageDelta, ...], tuple[StatDelta, ...]]

MAX_JOURNAL = 10_000  # flushes kept until folded (about 3 h at one a second)

# The generation, made if Redis has none (it was never used, or it restarted empty):
# Redis's own clock (one clock for every node: a later generation sorts after an earlier
# one, which the store relies on) and a random suffix from the node (ARGV[suffix]).
# Starts the scripts below; KEYS[generation] as given.
GENERATION = """
local function new_generation()
  local now = redis.call('TIME')
  return string.format('%010d%06d-%s', tonumber(now[1]), tonumber(now[2]), ARGV[{suffix}])
end
local gen = redis.call('GET', KEYS[{key}])
if not gen then
  gen = new_generation()
  redis.call('SET', KEYS[{key}], gen)
end
"""

# KEYS: generation. ARGV: a generation suffix, the cumulative hash's key prefix, account
# ids (none: just the generation). Returns {generation, counter...}.
READ_SCRIPT = GENERATION.format(key=1, suffix=1) + """
local out = {gen}
for i = 3, #ARGV do
  table.insert(out, tonumber(redis.call('HGET', ARGV[2] .. gen, ARGV[i]) or '0'))
end
return out
"""

# KEYS: this meter's day hash, days set, this meter's marker, generation.
# ARGV: days-set member, sequence, last acknowledged sequence, the meter's generation
# ('' for a new meter), a generation suffix, cumulative hash key prefix, n, then n (field,
# bytes) pairs for the day hash, then (account, bytes) pairs for the cumulative hash.
# Returns {'ok', generation, folded through, cumulative...}, {'lost', generation} (Redis
# lost flushes this meter had acknowledged) or {'moved', generation} (the generation
# changed: this meter's flushes stay where they are; the node goes on under a new id).
FLUSH_SCRIPT = GENERATION.format(key=4, suffix=5) + """
local seq = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
if last < tonumber(ARGV[3]) then
  if gen == ARGV[4] then
    redis.call('EXPIRE', ARGV[6] .. gen, 86400)  -- the old counters: read no more
    gen = new_generation()
    redis.call('SET', KEYS[4], gen)
  end
  return {'lost', gen}
end
if ARGV[4] ~= '' and gen ~= ARGV[4] then
  return {'moved', gen}
end
local cum = ARGV[6] .. gen
local n = tonumber(ARGV[7])
local applied = seq > last
if applied then
  redis.call('HSET', KEYS[3], 'seq', seq)
  redis.call('EXPIRE', KEYS[3], 604800)
  redis.call('HSETNX', KEYS[1], '#first', seq)
  redis.call('HSET', KEYS[1], '#last', seq)
  redis.call('HSETNX', KEYS[1], '#gen', gen)
  for i = 0, n - 1 do
    redis.call('HINCRBY', KEYS[1], ARGV[8 + 2 * i], ARGV[9 + 2 * i])
  end
  redis.call('SADD', KEYS[2], ARGV[1])
end
local out = {'ok', gen, tonumber(redis.call('HGET', KEYS[3], 'folded') or '0')}
local j = 8 + 2 * n
while j < #ARGV do
  if applied then
    table.insert(out, redis.call('HINCRBY', cum, ARGV[j], ARGV[j + 1]))
  else
    table.insert(out, tonumber(redis.call('HGET', cum, ARGV[j]) or '0'))
  end
  j = j + 2
end
return out
"""


def generation_suffix() -> str:
    """Sets apart generations two nodes make in the same microsecond."""
    return uuid.uuid4().hex[:8]


class RedisMeter:
    def __init__(
        self,
        redis: Redis,
        keys: UsageKeys,
        *,
        interval: float = 1.0,
        lock: asyncio.Lock | None = None,
        today: Callable[[], date] = _today,
        store: FoldSink | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._lock = lock or asyncio.Lock()
        self._today = today
        self._store = store  # where the journal goes when Redis lost it, and at stop
        self._flush_script = redis.register_script(FLUSH_SCRIPT)
        self._read_script = redis.register_script(READ_SCRIPT)
        self._buffer = UsageBuffer()
        self._schedule = FlushSchedule(self.flush, interval)
        self._new_meter()
        self.generation: str | None = None  # of the shared counters; None until Redis answers
        self._day = date.min
        # Flushes Redis applied, by sequence number, until a folder reports them folded.
        self._journal: dict[int, Flushed] = {}
        # Journals of earlier meter ids that Redis lost, until the store has them.
        self._recovery: list[FoldBatch] = []
        self._changed: set[int] = set()
        self.cumulative: dict[int, int] = {}  # latest known shared counter per account
        self.health = BackendHealth("Redis (usage counters)")
        self.recovery_health = BackendHealth("the store (usage Redis lost)")
        self.last_flush = 0.0  # loop time of the last successful flush (for flush lag)
        self.add = self._buffer.add  # the hot path: one bound-method call, no wrapper
        self.count_request = self._buffer.count_request  # once per request, at its end

    def _new_meter(self) -> None:
        self.meter_id = uuid.uuid4().hex
        self._sequence = 0  # of the last batch made
        self._acknowledged = 0  # the last sequence Redis confirmed applied
        self._batch: tuple[int, Flushed] | None = None
        self._meter_generation = ""  # its flushes' generation, from the first one applied

    # ---- what the directory reads -------------------------------------------------------

    def pending_totals(self) -> Mapping[int, int]:
        """Bytes in neither the shared counters nor the store: counted and not yet sent,
        and journals Redis lost that are not yet in the store."""
        totals = dict(self._buffer.pending_totals())
        for batch in self._recovery:
            for account_id, nbytes in bytes_per_account(batch.deltas).items():
                totals[account_id] = totals.get(account_id, 0) + nbytes
        return totals

    def shared_totals(self) -> Mapping[int, int]:
        return self.cumulative

    @property
    def unfolded_flushes(self) -> int:
        """Flushes Redis applied that no fold has confirmed yet (the journal)."""
        return len(self._journal)

    def take_changed(self) -> dict[int, int]:
        """Cumulative counters that changed since the last call."""
        changed = {i: self.cumulative[i] for i in self._changed if i in self.cumulative}
        self._changed.clear()
        return changed

    async def current_generation(self) -> str | None:
        """The generation of the shared counters (made if Redis has none); None if Redis
        is unreachable."""
        await self._read([])
        return self.generation

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        """Read the cumulative counters of `account_ids` (after loading them from the store,
        so the counters include at least what the store had folded)."""
        if account_ids:
            await self._read(sorted(set(account_ids)))

    async def _read(self, ids: list[int]) -> None:
        from redis.exceptions import RedisError

        try:
            reply = await self._read_script(
                keys=[self._keys.generation],
                args=[generation_suffix(), self._keys.cumulative_prefix, *ids],
            )
        except RedisError as error:
            self.health.failed(error, "reading shared counters")
            return
        self.health.ok()
        self._adopt(decoded(reply[0]))
        for account_id, value in zip(ids, reply[1:], strict=True):
            self._set(account_id, int(value))

    def _adopt(self, generation: str) -> None:
        """Counters of another generation mean nothing in this one."""
        if generation != self.generation:
            if self.generation is not None:
                log.warning("shared usage counters: new generation %s", generation)
            self.generation = generation
            self.cumulative.clear()
            self._changed.clear()

    def _set(self, account_id: int, value: int) -> None:
        if self.cumulative.get(account_id) != value:
            self.cumulative[account_id] = value
            self._changed.add(account_id)

    # ---- flushing -----------------------------------------------------------------------

    async def start(self) -> None:
        await self._schedule.start()

    async def flush(self) -> None:
        async with self._lock:
            retrying = self._batch is not None
            await self._send()
            if retrying:  # Redis is back: what was counted meanwhile goes now too
                await self._send()
            await self._recover()

    async def _send(self) -> None:
        """Send the held batch (one whose flush failed), or a new one of what was counted."""
        if self._batch is None:
            taken = tuple(self._buffer.take())
            stats = tuple(self._buffer.taken_stats())
            if not taken and not stats:
                self._buffer.committed()
                await self.current_generation()  # an idle node still learns of a new one
                self.last_flush = asyncio.get_running_loop().time()
                return
            self._sequence += 1
            self._day = max(self._day, self._today())  # a meter's days never go back
            self._batch = (self._sequence, (self._day, taken, stats))
        sequence, flushed = self._batch
        day, deltas, stats = flushed
        totals = bytes_per_account(deltas)
        args: list[Any] = [
            f"{day.isoformat()}:{self.meter_id}",
            sequence,
            self._acknowledged,
            self._meter_generation,
            generation_suffix(),
            self._keys.cumulative_prefix,
            len(deltas) + len(stats),
        ]
        for delta in deltas:
            args += [field(delta.account_id, delta.parent_id), delta.nbytes]
        for stat in stats:  # the day hash holds the flush's statistics too (keys.py)
            args += [stat_field(stat.account_id, stat.name), stat.value]
        for account_id, nbytes in totals.items():
            args += [account_id, nbytes]
        keys = [
            self._keys.day(f"{day.isoformat()}:{self.meter_id}"),
            self._keys.days,
            self._keys.node(self.meter_id),
            self._keys.generation,
        ]
        from redis.exceptions import RedisError

        try:
            reply = await self._flush_script(keys=keys, args=args)
        except RedisError as error:
            self.health.failed(error, "flushing usage")
            raise
        self.health.ok()
        status, generation = decoded(reply[0]), decoded(reply[1])
        if status != "ok":  # a new meter sends it again (and cannot be lost or moved)
            self._lose_meter(status, generation)
            await self._send()
            return
        self._adopt(generation)
        self._meter_generation = generation
        self._acknowledged = sequence
        self._journal[sequence] = flushed
        self._batch = None
        self._buffer.committed()
        self._forget_folded(int(reply[2]))
        self.last_flush = asyncio.get_running_loop().time()
        for account_id, value in zip(totals, reply[3:], strict=True):
            self._set(account_id, int(value))

    def _lose_meter(self, status: str, generation: str) -> None:
        """Redis lost this meter's flushes, or moved to a new generation: its journal goes
        to the store (see `_recover`), the held batch back to the counts, and the node
        goes on under a new meter id in the new generation."""
        if status == "lost":
            log.error(
                "Redis lost usage flushes of meter %s (restarted empty or from an older "
                "snapshot): writing %d journaled flushes to the store",
                self.meter_id,
                len(self._journal),
            )
        self._recovery += self._journal_batches()
        self._journal = {}
        self._batch = None
        self._buffer.failed()
        self._new_meter()
        self._adopt(generation)

    def _journal_batches(self) -> list[FoldBatch]:
        return [self._flushed(seq, flushed) for seq, flushed in self._journal.items()]

    def _flushed(self, sequence: int, flushed: Flushed, *, sent: bool = True) -> FoldBatch:
        """One flush of this meter as the store takes it; its bytes are in the shared
        counters of the meter's generation if it was sent."""
        generation = (self._meter_generation or None) if sent else None
        day, deltas, stats = flushed
        return FoldBatch(self.meter_id, sequence, sequence, day, deltas, generation, stats)

    def _forget_folded(self, folded_through: int) -> None:
        for seq in [s for s in self._journal if s <= folded_through]:
            del self._journal[seq]
        if len(self._journal) > MAX_JOURNAL:  # no folder is running: Redis holds the rest
            oldest = next(iter(self._journal))
            del self._journal[oldest]
            log.error(
                "usage journal full (%d flushes unfolded: is any node folding?); "
                "flush %d of meter %s now lives only in Redis",
                MAX_JOURNAL,
                oldest,
                self.meter_id,
            )

    async def _recover(self) -> None:
        """Write journals Redis lost into the store (which skips what it already has)."""
        if not self._recovery or self._store is None:
            return
        batches = list(self._recovery)
        try:
            outcome = await asyncio.to_thread(
                self._store.fold, batches, datetime.now(UTC), self.generation
            )
        except Exception as error:
            self.recovery_health.failed(error, f"writing {len(batches)} recovered flushes")
            return
        self.recovery_health.ok()
        del self._recovery[: len(batches)]
        log.warning(
            "recovered usage written to the store: %d flushes, %d bytes (%d already there)",
            outcome.folded,
            outcome.nbytes,
            outcome.skipped,
        )

    # ---- stopping -----------------------------------------------------------------------

    async def stop(self, attempts: int = 5) -> None:
        """Flush a last time, then put in the store everything not known folded there."""
        await self._schedule.stop(attempts)
        if self._store is None:  # a meter made without one (benchmarks): Redis keeps it
            if self._batch is not None or self._buffer:
                log.error("usage not written at stop: %s", self.pending_totals())
            return
        async with self._lock:
            self._recovery += self._journal_batches()
            self._journal = {}
            if self._batch is not None:  # Redis may or may not have applied it
                sequence, flushed = self._batch
                self._recovery.append(self._flushed(sequence, flushed))
                self._batch = None
                self._buffer.committed()
            unsent = tuple(self._buffer.take())
            unsent_stats = tuple(self._buffer.taken_stats())
            if unsent or unsent_stats:  # a number Redis has never seen
                self._sequence += 1
                flushed = (max(self._day, self._today()), unsent, unsent_stats)
                self._recovery.append(self._flushed(self._sequence, flushed, sent=False))
            self._buffer.committed()
            for attempt in range(attempts):
                await self._recover()
                if not self._recovery:
                    return
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            log.error(
                "usage not written at stop (the store is unreachable): %s",
                self.pending_totals(),
            )
