"""Redis losing data: restarted empty, or from an older snapshot, or emptied while a folder
holds a batch. A meter finds out at its next flush (its last acknowledged flush number is
ahead of Redis's), writes its journal of unfolded flushes to the store itself and goes on
under a new meter id in a new generation; the store's per-meter flush numbers make every
path count each flush exactly once.

Redis is the shared local server, every key under this test's own prefix: "restarting
empty" deletes the prefix's keys; "an older snapshot" is DUMP/RESTORE of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime

import pytest
import redis

from meshproxy.domain.folds import FoldBatch, FoldOutcome
from meshproxy.fleet import async_client
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.meter.shared import RedisMeter
from meshproxy.meter.sink import FoldSink
from meshproxy.store import Store, StoreUnavailable

DAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


class Rig:
    """One node's meter and a folder, on the real store and Redis, on one event loop."""

    def __init__(self, db: Store, redis_url: str, prefix: str) -> None:
        self.db = db
        self.keys = UsageKeys(prefix)
        self.prefix = prefix
        self.sync = redis.Redis.from_url(redis_url)
        self.client = async_client(redis_url)
        self.meter = RedisMeter(self.client, self.keys, today=lambda: DAY, store=db.folds)
        parent = db.accounts.create("parent", plan="default", billing_day=1)
        self.parent = parent.id
        self.sub = db.accounts.create("sub", parent_id=parent.id).id
        self.counted = 0

    async def count(self, nbytes: int) -> None:
        """Bytes the sub-account moved, then a flush."""
        self.meter.add(self.sub, self.parent, nbytes)
        self.counted += nbytes
        await self.meter.flush()

    def fold(self, store: FoldSink | None = None) -> FoldOutcome:
        return UsageFolder(self.sync, self.keys, store or self.db.folds, clock=lambda: NOW).fold()

    def recorded(self) -> tuple[int, int]:
        """(the sub-account's, the parent's) total bytes in the store."""
        accounts = {a.id: a for a in self.db.accounts.list()}
        usage = self.db.usage.of_many([accounts[self.sub], accounts[self.parent]], NOW)
        return usage[self.sub][1], usage[self.parent][1]

    def names(self) -> list[bytes]:
        return list(self.sync.scan_iter(match=f"{self.prefix}*", count=1000))

    def snapshot(self) -> dict[bytes, bytes]:
        dumped = {name: self.sync.dump(name) for name in self.names()}
        return {name: value for name, value in dumped.items() if isinstance(value, bytes)}

    def restart(self, snapshot: dict[bytes, bytes] | None = None) -> None:
        """Redis comes back empty, or with what it held at `snapshot`."""
        names = self.names()
        if names:
            self.sync.delete(*names)
        for name, value in (snapshot or {}).items():
            self.sync.restore(name, 0, value)

    async def close(self) -> None:
        await self.client.aclose()
        self.sync.close()


def run_rig(
    db: Store, redis_url: str, prefix: str, body: Callable[[Rig], Awaitable[None]]
) -> None:
    async def main() -> None:
        rig = Rig(db, redis_url, prefix)
        try:
            await body(rig)
        finally:
            await rig.close()

    asyncio.run(main())


def test_redis_restarted_empty_loses_no_flush_and_counts_none_twice(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    async def body(rig: Rig) -> None:
        await rig.count(100)
        assert rig.fold().folded == 1  # flush 1 folded, and the meter told so
        await rig.count(20)
        await rig.count(3)  # flushes 2 and 3: applied by Redis, not folded
        old_meter, old_generation = rig.meter.meter_id, rig.meter.generation
        rig.restart()
        await rig.count(4000)  # finds Redis empty: writes 2 and 3 itself, sends 4000 anew
        assert rig.meter.meter_id != old_meter
        assert old_generation is not None and rig.meter.generation is not None
        assert rig.meter.generation > old_generation  # Redis's clock: later sorts after
        assert rig.recorded() == (123, 123)  # the journal, before any fold
        assert rig.meter.pending_totals() == {}
        rig.fold()
        assert rig.recorded() == (4123, 4123) == (rig.counted, rig.counted)
        assert rig.fold().folded == 0

    run_rig(db, redis_url, redis_prefix, body)


@pytest.mark.parametrize("moment", ["before any fold", "with a claimed batch pending"])
def test_redis_back_from_an_older_snapshot_counts_each_flush_once(
    db: Store, redis_url: str, redis_prefix: str, moment: str
) -> None:
    """The snapshot brings back batches the store has folded since, and lacks flushes
    applied after it: the first are skipped, the second written from the journal."""

    async def body(rig: Rig) -> None:
        await rig.count(100)
        if moment == "with a claimed batch pending":
            with pytest.raises(Died):
                rig.fold(DyingStore(rig.db))
        snapshot = rig.snapshot()
        await rig.count(20)
        rig.fold()
        assert rig.recorded() == (120, 120)
        await rig.count(3)
        rig.restart(snapshot)
        await rig.count(4000)
        assert rig.recorded() == (123, 123)  # flush 3 from the journal
        outcome = rig.fold()
        assert outcome.skipped == 1  # the snapshot's flush 1, folded before
        assert rig.recorded() == (4123, 4123) == (rig.counted, rig.counted)

    run_rig(db, redis_url, redis_prefix, body)


class Died(BaseException):
    """A folder dying before its commit (nothing in the folder catches it)."""


class DyingStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def fold(self, *args: object) -> FoldOutcome:
        raise Died

    def prune(self, older_than: datetime) -> int:
        return self.store.folds.prune(older_than)


def test_redis_emptied_while_a_folder_holds_its_batch(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    """The folder read the batch, Redis restarts, the node writes the same flushes from its
    journal, then the folder commits: the store takes them once."""

    async def body(rig: Rig) -> None:
        loop = asyncio.get_running_loop()
        await rig.count(100)
        await rig.count(20)

        class RestartingStore:
            def fold(self, batches: Sequence[FoldBatch], *args: object) -> FoldOutcome:
                rig.restart()
                asyncio.run_coroutine_threadsafe(rig.count(4000), loop).result(10)
                assert rig.recorded() == (120, 120)  # the node's journal went first
                return rig.db.folds.fold(batches, *args)  # type: ignore[arg-type]

            def prune(self, older_than: datetime) -> int:
                return rig.db.folds.prune(older_than)

        outcome = await asyncio.to_thread(rig.fold, RestartingStore())
        assert outcome.skipped == 1 and outcome.folded == 0
        rig.fold()
        assert rig.recorded() == (4120, 4120) == (rig.counted, rig.counted)

    run_rig(db, redis_url, redis_prefix, body)


def test_a_stopped_meter_leaves_nothing_only_redis_holds(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    async def body(rig: Rig) -> None:
        await rig.count(100)
        await rig.count(20)
        rig.meter.add(rig.sub, rig.parent, 5)  # never sent
        rig.counted += 5
        await rig.meter.stop()
        assert rig.recorded() == (125, 125)
        assert rig.fold().skipped == 1  # Redis's copy of flushes 1-3
        rig.restart()
        assert rig.recorded() == (125, 125)

    run_rig(db, redis_url, redis_prefix, body)


def test_live_usage_stays_exact_across_a_new_generation(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    """loaded usage + (shared counter - folded at load) is every byte, in the old
    generation and in the new one (folded_bytes restart with the first fold in it)."""

    async def body(rig: Rig) -> None:
        def live() -> int:
            (view,) = [
                v
                for v in rig.db.accounts.views(NOW, ["parent"], rig.meter.generation)
                if v.account.id == rig.parent
            ]
            shared = rig.meter.shared_totals().get(rig.parent, 0)
            return view.total_bytes + shared - view.folded_bytes

        await rig.count(100)
        rig.fold()
        await rig.count(20)
        assert live() == 120
        rig.restart()
        await rig.count(4000)
        await rig.meter.refresh_shared([rig.parent])
        assert live() == 4120  # before any fold in the new generation
        rig.fold()
        await rig.meter.refresh_shared([rig.parent])
        assert live() == 4120
        await rig.count(1)
        assert live() == 4121 == rig.counted

    run_rig(db, redis_url, redis_prefix, body)


def test_journal_waits_in_memory_while_the_store_is_down_too(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    """Redis comes back empty while the database is unreachable: the journal stays in
    memory (in the node's unsent figure, and health says so) and goes at the next flush
    after the database answers."""

    async def body(rig: Rig) -> None:
        class Unreachable:
            down = True

            def fold(self, *args: object) -> FoldOutcome:
                if self.down:
                    raise StoreUnavailable("connection refused")
                return rig.db.folds.fold(*args)  # type: ignore[arg-type]

            def prune(self, older_than: datetime) -> int:
                return rig.db.folds.prune(older_than)

        store = Unreachable()
        rig.meter._store = store
        await rig.count(100)
        await rig.count(20)
        rig.restart()
        await rig.count(4000)
        assert not rig.meter.recovery_health.up
        assert rig.meter.pending_totals() == {rig.sub: 120, rig.parent: 120}
        assert rig.recorded() == (0, 0)
        await rig.meter.flush()  # still down: kept
        store.down = False
        await rig.meter.flush()
        assert rig.meter.recovery_health.up and rig.meter.pending_totals() == {}
        rig.fold()
        assert rig.recorded() == (4120, 4120) == (rig.counted, rig.counted)

    run_rig(db, redis_url, redis_prefix, body)


def test_counters_of_an_earlier_version_are_folded_once(
    db: Store, redis_url: str, redis_prefix: str
) -> None:
    """Day hashes and pending batches in the format before meters (nodes of an earlier
    version, during an upgrade) are folded, each claim once, beside the new ones."""

    async def body(rig: Rig) -> None:
        base = rig.keys.base
        field = f"{rig.sub}:{rig.parent}"
        rig.sync.hset(f"{base}day:{DAY}", field, 70)
        rig.sync.sadd(rig.keys.days, str(DAY))
        left = f"{base}batch:{DAY}:0123abcd"  # claimed by an old folder that died
        rig.sync.hset(left, field, 800)
        rig.sync.sadd(rig.keys.pending, left)
        await rig.count(4000)
        outcome = rig.fold()
        assert outcome.folded == 3 and outcome.skipped == 0
        assert rig.recorded() == (4870, 4870)
        assert rig.fold().folded == 0 and rig.recorded() == (4870, 4870)

    run_rig(db, redis_url, redis_prefix, body)
