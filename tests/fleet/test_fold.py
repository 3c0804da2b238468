"""Shared usage: meters add to Redis, folders move it into the store, each byte once —
even when a folder dies mid-fold (in-process crashes at each step, and kill -9)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.folds import FoldOutcome
from meshproxy.fleet import async_client
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.meter.shared import RedisMeter
from meshproxy.store import Store
from support.polling import eventually

DAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_accounts(db: Store, subs: int) -> tuple[int, list[int]]:
    parent = db.accounts.create("parent", plan="default", billing_day=1)
    ids = [db.accounts.create(f"sub{i}", parent_id=parent.id).id for i in range(subs)]
    return parent.id, ids


def meter_flushes(redis_url: str, keys: UsageKeys, batches: Sequence[Sequence[UsageDelta]],
                  day: date = DAY) -> None:
    """One RedisMeter (one node) counting and flushing each batch in turn."""

    async def run() -> None:
        client = async_client(redis_url)
        meter = RedisMeter(client, keys, today=lambda: day)
        for batch in batches:
            for delta in batch:
                meter.add(delta.account_id, delta.parent_id, delta.nbytes)
            await meter.flush()
        await client.aclose()

    asyncio.run(run())


def totals(db: Store, ids: Sequence[int]) -> dict[int, int]:
    return {i: v[1] for i, v in db.usage.of_many([a for a in _records(db, ids)], NOW).items()}


def _records(db: Store, ids: Sequence[int]) -> list:  # type: ignore[type-arg]
    wanted = set(ids)
    return [a for a in db.accounts.list() if a.id in wanted]


class Killed(BaseException):
    """A folder dying at this point (BaseException: nothing in the folder catches it)."""


class CrashingStore:
    """The real store, with the folder dying just before or just after the commit."""

    def __init__(self, store: Store, *, after_commit: bool) -> None:
        self.store = store
        self.after_commit = after_commit

    def fold(self, *args: object) -> FoldOutcome:
        if not self.after_commit:
            raise Killed
        self.store.folds.fold(*args)  # type: ignore[arg-type]
        raise Killed

    def prune(self, older_than: datetime) -> int:
        return self.store.folds.prune(older_than)


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_folder_dying_around_the_commit_neither_loses_nor_double_counts(
    db: Store, redis_url: str, redis_prefix: str, sync_redis: redis.Redis, after_commit: bool
) -> None:
    keys = UsageKeys(redis_prefix)
    parent, subs = make_accounts(db, 3)
    meter_flushes(redis_url, keys, [[UsageDelta(subs[0], parent, 1000),
                                     UsageDelta(subs[1], parent, 20)],
                                    [UsageDelta(parent, None, 5)]])
    with pytest.raises(Killed):
        UsageFolder(sync_redis, keys, CrashingStore(db, after_commit=after_commit),
                    clock=lambda: NOW).fold()
    assert sync_redis.scard(keys.pending) == 1  # the claimed batch survives its folder
    meter_flushes(redis_url, keys, [[UsageDelta(subs[0], parent, 7)]])
    result = UsageFolder(sync_redis, keys, db.folds, clock=lambda: NOW).fold()
    assert result.skipped == (1 if after_commit else 0)
    assert totals(db, [parent, *subs]) == {parent: 1032, subs[0]: 1007, subs[1]: 20, subs[2]: 0}
    assert UsageFolder(sync_redis, keys, db.folds, clock=lambda: NOW).fold().folded == 0
    assert totals(db, [parent])[parent] == 1032
    assert sync_redis.scard(keys.pending) == 0 and sync_redis.scard(keys.days) == 0
    monthly = db.usage.daily(parent, DAY, date(2026, 3, 16))
    assert monthly == [(DAY, 1032)]


def test_a_resent_flush_is_applied_once(
    db: Store, redis_url: str, redis_prefix: str, sync_redis: redis.Redis
) -> None:
    """A flush whose reply was lost is sent again with the same sequence number."""
    keys = UsageKeys(redis_prefix)
    parent, subs = make_accounts(db, 1)

    async def run() -> None:
        client = async_client(redis_url)
        meter = RedisMeter(client, keys, today=lambda: DAY)
        meter.add(subs[0], parent, 300)
        script = meter._flush_script

        async def lost_reply(**kwargs: Any) -> object:
            await script(**kwargs)  # applied by Redis, but the node never hears back
            raise redis.exceptions.ConnectionError("reply lost")

        meter._flush_script = lost_reply  # type: ignore[assignment]
        with pytest.raises(redis.exceptions.ConnectionError):
            await meter.flush()
        assert not meter.health.up and meter.pending_totals() == {subs[0]: 300, parent: 300}
        meter._flush_script = script
        meter.add(subs[0], parent, 1)  # counted meanwhile: the next batch
        await meter.flush()
        await meter.flush()
        assert meter.health.up and meter.pending_totals() == {}
        assert meter.shared_totals() == {subs[0]: 301, parent: 301}
        await client.aclose()

    asyncio.run(run())
    UsageFolder(sync_redis, keys, db.folds, clock=lambda: NOW).fold()
    assert totals(db, [parent, subs[0]]) == {parent: 301, subs[0]: 301}


@pytest.mark.slow
def test_folders_killed_with_sigkill_under_load_count_every_byte_once(
    postgres_url: str, redis_url: str, redis_prefix: str, sync_redis: redis.Redis,
    tmp_path: Path
) -> None:
    db = Store.open(postgres_url)
    keys = UsageKeys(redis_prefix)
    parent, subs = make_accounts(db, 400)
    config = tmp_path / "fold.toml"
    config.write_text(f'database_url = "{postgres_url}"\nredis_url = "{redis_url}"\n'
                      f'data_dir = "{tmp_path}"\n[shared]\nprefix = "{redis_prefix}"\n')
    command = [sys.executable, "-m", "meshproxy", "db", "fold", "--config", str(config),
               "--watch", "--interval", "0"]
    expected: defaultdict[int, int] = defaultdict(int)
    rng = random.Random(4)
    left_pending = 0
    for _ in range(6):
        folder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 0.8 + rng.random()
        while time.monotonic() < deadline:  # traffic while the folder works
            batch = [UsageDelta(s, parent, rng.randrange(1, 100_000))
                     for s in rng.sample(subs, 300)]
            meter_flushes(redis_url, keys, [batch], day=rng.choice([DAY, date(2026, 3, 16)]))
            for delta in batch:
                expected[delta.account_id] += delta.nbytes
                expected[parent] += delta.nbytes
        meter_flushes(redis_url, keys, [batch])  # a last batch, then a kill while the
        for delta in batch:  # folder holds a claimed batch (between claim and release)
            expected[delta.account_id] += delta.nbytes
            expected[parent] += delta.nbytes
        # (a spin, not a sleep: the kill should land while the batch is still claimed)
        eventually(lambda: sync_redis.scard(keys.pending), 5, interval=0)
        os.kill(folder.pid, signal.SIGKILL)
        assert folder.wait(10) == -signal.SIGKILL, folder.stderr.read() if folder.stderr else ""
        left_pending += int(sync_redis.scard(keys.pending) > 0)
    assert left_pending, "no kill landed mid-fold; the test proves nothing"
    UsageFolder(sync_redis, keys, db.folds).fold()
    ids = [parent, *subs]
    assert totals(db, ids) == {i: expected[i] for i in ids}
    db.close()
