"""The authentication-failure ban, one table run against its three homes: the process's
BanBook (domain/bans.py), the store's SQL (SQLite and PostgreSQL) and the Redis script
(fleet/bans.py). max_failures failures within window_seconds ban for ban_seconds; a
failure window_seconds old has left the window; a ban in force that ends later is kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest
import redis

from meshproxy.domain.bans import BanBook, BanPolicy
from meshproxy.fleet.bans import RedisBans
from meshproxy.fleet.link import RedisLink
from meshproxy.store import Store

POLICY = BanPolicy(max_failures=4, window_seconds=600, ban_seconds=10_800)
IP = "198.51.100.7"

# Steps: ("fail", at, the ban end it returns or None), ("banned", now, ban end or None),
# ("in force", until): a ban decided elsewhere, already in force.
Step = tuple[str, float, float | None] | tuple[str, float]
CASES: dict[str, list[Step]] = {
    "the fourth failure within the window bans": [
        ("fail", 0, None), ("fail", 10, None), ("fail", 20, None),
        ("fail", 30, 30 + 10_800),
        ("banned", 31, 30 + 10_800), ("banned", 10_829, 30 + 10_800), ("banned", 10_830, None),
    ],
    "failures older than the window do not count": [
        ("fail", 0, None), ("fail", 200, None), ("fail", 400, None),
        ("fail", 601, None), ("banned", 601, None),
        ("fail", 602, 602 + 10_800),
    ],
    "a failure window_seconds old has just left the window": [
        ("fail", 0, None), ("fail", 1, None), ("fail", 2, None),
        ("fail", 600, None),  # the one at 0 has left; those at 1 and 2 count
        ("fail", 600.5, 600.5 + 10_800),
    ],
    "a ban in force that ends later is kept": [
        ("in force", 50_000),
        ("fail", 0, None), ("fail", 1, None), ("fail", 2, None),
        ("fail", 3, 50_000), ("banned", 20_000, 50_000),
    ],
    "a ban in force that ends sooner is extended": [
        ("in force", 100),
        ("fail", 0, None), ("fail", 1, None), ("fail", 2, None),
        ("fail", 3, 3 + 10_800), ("banned", 101, 3 + 10_800),
    ],
}


class Bans(Protocol):
    def fail(self, at: float) -> float | None: ...
    def banned_until(self, now: float) -> float | None: ...
    def in_force(self, until: float) -> None: ...


class InBook:
    def __init__(self) -> None:
        self.book = BanBook(POLICY)

    def fail(self, at: float) -> float | None:
        return self.book.record_failure(IP, at)

    def banned_until(self, now: float) -> float | None:
        return self.book.banned_until(IP, now)

    def in_force(self, until: float) -> None:
        self.book.ban(IP, until)


class InStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def fail(self, at: float) -> float | None:
        return self.store.bans.record_failure(IP, at, POLICY)

    def banned_until(self, now: float) -> float | None:
        return self.store.bans.until(IP, now)

    def in_force(self, until: float) -> None:
        self.store.bans.record(IP, until)


class InRedis:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self.bans = RedisBans(RedisLink(client), prefix)

    def fail(self, at: float) -> float | None:
        return self.bans.record_failure(IP, at, POLICY)

    def banned_until(self, now: float) -> float | None:
        return self.bans.ban_until(IP, now)

    def in_force(self, until: float) -> None:
        self.client.hset(f"{self.prefix}bans", IP, repr(until))  # as the script writes it


@pytest.fixture(params=["book", "sqlite store", "postgres store", "redis"])
def bans(request: pytest.FixtureRequest) -> Iterator[Bans]:
    if request.param == "book":
        yield InBook()
    elif request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        yield InRedis(client, request.getfixturevalue("redis_prefix"))
        client.close()
    else:
        store = Store.open(request.getfixturevalue(f"{request.param.split()[0]}_url"))
        yield InStore(store)
        store.close()


@pytest.mark.parametrize("case", list(CASES))
def test_every_ban_book_keeps_the_same_window(bans: Bans, case: str) -> None:
    for step in CASES[case]:
        kind, at, *result = step
        if kind == "in force":
            bans.in_force(at)
        elif kind == "fail":
            assert bans.fail(at) == result[0], step
        else:
            assert bans.banned_until(at) == result[0], step
