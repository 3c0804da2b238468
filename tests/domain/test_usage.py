"""'A sub-account's bytes also count for its parent' (domain/usage.py), one table run
against every counter that follows it: the rule itself, the in-process meter's buffer,
the Redis meter's shared counters, the store's usage rows (SQLite and PostgreSQL) and the
data plane's live figures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.limits import Limits
from meshproxy.domain.usage import bytes_per_account
from meshproxy.fleet import async_client
from meshproxy.meter.buffer import UsageBuffer
from meshproxy.meter.keys import UsageKeys
from meshproxy.meter.shared import RedisMeter
from meshproxy.proxy.core.directory import AccountState
from meshproxy.store import Store

DAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
# name -> parent's name; ids are 1, 2, ... in this order (the store's on a fresh schema).
ACCOUNTS = {"parent": None, "sub1": "parent", "sub2": "parent", "alone": None}
IDS = {name: i for i, name in enumerate(ACCOUNTS, start=1)}
NAMES = {i: name for name, i in IDS.items()}

# (what moved: account, bytes) -> bytes counted per account (accounts with none left out)
CASES: dict[str, tuple[list[tuple[str, int]], dict[str, int]]] = {
    "a sub-account's bytes count for its parent": (
        [("sub1", 100)],
        {"sub1": 100, "parent": 100},
    ),
    "a parent's own bytes count for it alone": ([("parent", 7)], {"parent": 7}),
    "siblings add up in their parent": (
        [("sub1", 100), ("sub2", 20), ("parent", 3), ("sub1", 1)],
        {"sub1": 101, "sub2": 20, "parent": 124},
    ),
    "an account without a parent counts for nobody else": (
        [("alone", 5), ("sub2", 1)],
        {"alone": 5, "sub2": 1, "parent": 1},
    ),
    "no bytes count for nobody": ([("sub1", 0), ("alone", 0)], {}),
}

Counter = Callable[[list[UsageDelta]], dict[int, int]]


def deltas_of(moved: list[tuple[str, int]]) -> list[UsageDelta]:
    return [
        UsageDelta(IDS[name], None if ACCOUNTS[name] is None else IDS[str(ACCOUNTS[name])], n)
        for name, n in moved
    ]


def by_rule(deltas: list[UsageDelta]) -> dict[int, int]:
    return bytes_per_account(deltas)


def by_meter_buffer(deltas: list[UsageDelta]) -> dict[int, int]:
    buffer = UsageBuffer()
    for delta in deltas:
        buffer.add(delta.account_id, delta.parent_id, delta.nbytes)
    return buffer.pending_totals()


def by_live_figures(deltas: list[UsageDelta]) -> dict[int, int]:
    states = {
        i: AccountState(
            id=i, username=name, parent_id=None, password_hash=None, active=True,
            limits=Limits(), proxies=frozenset(), ips=(), hostnames=(), billing_day=1,
        )
        for name, i in IDS.items()
    }
    for name, parent in ACCOUNTS.items():
        if parent is not None:
            states[IDS[name]].parent = states[IDS[parent]]
    for delta in deltas:
        states[delta.account_id].add_usage(delta.nbytes)
    return {i: s.total_bytes for i, s in states.items() if s.total_bytes}


@pytest.fixture(
    params=["rule", "meter buffer", "redis meter", "sqlite store", "postgres store",
            "live figures"]
)
def counter(request: pytest.FixtureRequest) -> Counter:
    if request.param == "rule":
        return by_rule
    if request.param == "meter buffer":
        return by_meter_buffer
    if request.param == "live figures":
        return by_live_figures
    if request.param == "redis meter":
        return by_redis_meter(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    url = request.getfixturevalue(f"{str(request.param).split()[0]}_url")
    db = Store.open(url)
    request.addfinalizer(db.close)
    return by_store(db)


def by_redis_meter(redis_url: str, prefix: str) -> Counter:
    def count(deltas: list[UsageDelta]) -> dict[int, int]:
        async def run() -> dict[int, int]:
            client = async_client(redis_url)
            meter = RedisMeter(client, UsageKeys(prefix), today=lambda: DAY)
            for delta in deltas:
                meter.add(delta.account_id, delta.parent_id, delta.nbytes)
            await meter.flush()
            await client.aclose()
            assert meter.pending_totals() == {}
            return {i: n for i, n in meter.shared_totals().items() if n}

        return asyncio.run(run())

    return count


def by_store(db: Store) -> Counter:
    records: dict[str, AccountRecord] = {}
    for name, parent in ACCOUNTS.items():
        parent_id = None if parent is None else records[parent].id
        records[name] = db.accounts.create(name, parent_id=parent_id, billing_day=1)
    assert {name: r.id for name, r in records.items()} == IDS

    def count(deltas: list[UsageDelta]) -> dict[int, int]:
        db.usage.record(deltas, DAY)
        usage = db.usage.of_many(list(records.values()), NOW)
        return {i: total for i, (_, total) in usage.items() if total}

    return count


@pytest.mark.parametrize("case", list(CASES))
def test_every_counter_counts_a_sub_accounts_bytes_for_its_parent(
    counter: Counter, case: str
) -> None:
    moved, expected = CASES[case]
    counted = counter(deltas_of(moved))
    assert {NAMES[i]: n for i, n in counted.items()} == expected
