"""Request statistics per account and day, in the store: written with the usage, folded
from Redis exactly once like the bytes of the same flushes, hosts bounded per day."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import redis

from meshproxy.domain import stats
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.folds import FoldBatch
from meshproxy.domain.stats import StatDelta
from meshproxy.fleet import async_client
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.meter.shared import RedisMeter
from meshproxy.store import Store

DAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def one_day(db: Store, account_id: int, day: date = DAY) -> stats.DayStats:
    (found,) = db.stats.daily(account_id, day, day + timedelta(days=1))
    return found


def test_recorded_with_the_usage_and_read_per_day(db: Store) -> None:
    parent = db.accounts.create("parent", plan="default", billing_day=1)
    sub = db.accounts.create("sub", parent_id=parent.id)
    deltas = [UsageDelta(sub.id, parent.id, 300)]
    figures = [
        StatDelta(sub.id, stats.REQUESTS, 3),
        StatDelta(sub.id, stats.ORIGIN_2XX, 2),
        StatDelta(sub.id, stats.PROXY_4XX, 1),
        StatDelta(sub.id, stats.BYTES, 300),
        StatDelta(sub.id, "host:a.example", 200),
        StatDelta(sub.id, "host:[2001:db8::1]", 100),
    ]
    db.usage.record(deltas, DAY, figures)
    db.usage.record([], DAY + timedelta(days=1), [StatDelta(sub.id, stats.REQUESTS, 1)])
    db.usage.record(deltas, DAY, figures)
    first, second = db.stats.daily(sub.id, DAY, DAY + timedelta(days=2))
    assert first.day == DAY.isoformat()
    assert first.get(stats.REQUESTS) == 6 and first.get(stats.ORIGIN_2XX) == 4
    assert first.get(stats.PROXY_4XX) == 2 and first.get(stats.BYTES) == 600
    assert first.get(stats.PROXY_5XX) == 0  # every counter named, 0 when none
    assert first.hosts == (("a.example", 400), ("[2001:db8::1]", 200))
    assert second.get(stats.REQUESTS) == 1 and second.hosts == ()
    assert db.stats.daily(parent.id, DAY, DAY + timedelta(days=2)) == []  # own requests only
    db.accounts.delete("sub")
    db.usage.record([], DAY, [StatDelta(sub.id, stats.REQUESTS, 1)])  # deleted: left out


def test_hosts_are_bounded_per_account_and_day(db: Store) -> None:
    account = db.accounts.create("parent", plan="default", billing_day=1)
    many = [StatDelta(account.id, f"host:h{i:03d}.example", 1000 + i) for i in range(150)]
    db.usage.record([], DAY, many[:90])
    db.usage.record([], DAY, many[90:])
    hosts = dict(one_day(db, account.id).hosts)
    assert len(hosts) == stats.MAX_HOSTS + 1  # the top 100, and the rest summed
    assert min(v for h, v in hosts.items() if h != "(other)") == 1050
    assert hosts["(other)"] == sum(1000 + i for i in range(50))
    assert sum(hosts.values()) == sum(s.value for s in many)


def test_a_batch_folded_twice_counts_its_statistics_once(db: Store) -> None:
    account = db.accounts.create("parent", plan="default", billing_day=1)
    figures = (StatDelta(account.id, stats.REQUESTS, 5), StatDelta(account.id, "host:x", 9))
    batch = FoldBatch("meter-a", 1, 1, DAY, (UsageDelta(account.id, None, 9),), None, figures)
    assert db.folds.fold([batch], NOW).folded == 1
    assert db.folds.fold([batch], NOW).skipped == 1
    day = one_day(db, account.id)
    assert day.get(stats.REQUESTS) == 5 and day.hosts == (("x", 9),)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_through_redis_folded_once_with_the_bytes(
    db: Store, redis_url: str, redis_prefix: str, sync_redis: redis.Redis
) -> None:
    """Two meters (two nodes) count and flush; a fold moves everything; a meter that stops
    writes its unconfirmed journal to the store too, which the store skips."""
    account = db.accounts.create("parent", plan="default", billing_day=1)
    keys = UsageKeys(redis_prefix)

    async def node(requests: int, stop: bool) -> None:
        client = async_client(redis_url)
        meter = RedisMeter(client, keys, today=lambda: DAY, store=db.folds)
        for i in range(requests):
            meter.add(account.id, None, 10)
            outcome = stats.ORIGIN_2XX if i % 2 else stats.PROXY_5XX
            meter.count_request(account.id, outcome, f"h{i % 3}.example", 10)
            if i % 4 == 3:
                await meter.flush()
        await meter.flush()
        if stop:  # its journal (every flush: none folded yet) goes to the store itself
            await meter.stop()
        await client.aclose()

    asyncio.run(node(10, stop=False))
    asyncio.run(node(7, stop=True))
    folder = UsageFolder(sync_redis, keys, db.folds, clock=lambda: NOW)
    outcome = folder.fold()
    assert outcome.folded >= 1 and outcome.skipped >= 1  # the stopped meter's: there already
    assert folder.fold().folded == 0
    day = one_day(db, account.id)
    assert day.get(stats.REQUESTS) == 17
    assert day.get(stats.ORIGIN_2XX) == 5 + 3 and day.get(stats.PROXY_5XX) == 5 + 4
    assert day.get(stats.BYTES) == 170 == sum(v for _, v in day.hosts)
    assert dict(day.hosts) == {"h0.example": 70, "h1.example": 50, "h2.example": 50}
    assert db.usage.daily(account.id, DAY, DAY + timedelta(days=1)) == [(DAY, 170)]
