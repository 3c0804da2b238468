"""The ban in Redis, shared by every node; changes announced on the channel; the store's
own ban tables while Redis is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from meshproxy.domain.bans import BanPolicy
from meshproxy.fleet import fleet_store, notify, sync_client
from meshproxy.fleet.notify import RedisNotifier
from meshproxy.store import Store
from meshproxy.store.engine import make_engine

POLICY = BanPolicy(max_failures=3, window_seconds=600, ban_seconds=3600)
T0 = 1_800_000_000.0


@pytest.fixture
def nodes(sqlite_url: str, redis_url: str, redis_prefix: str) -> Iterator[list[Store]]:
    """Two nodes' stores over one database and one Redis."""
    opened = [fleet_store(make_engine(sqlite_url), sync_client(redis_url), redis_prefix)
              for _ in range(2)]
    opened[0].migrate()
    yield opened
    for store in opened:
        store.close()


def test_failures_on_two_nodes_add_up_to_one_ban_seen_by_both(nodes: list[Store]) -> None:
    first, second = nodes
    assert first.bans.record_failure("10.0.0.1", T0, POLICY) is None
    assert second.bans.record_failure("10.0.0.1", T0 + 1, POLICY) is None
    assert first.bans.record_failure("10.0.0.2", T0 + 1, POLICY) is None  # another IP
    until = second.bans.record_failure("10.0.0.1", T0 + 2, POLICY)
    assert until == T0 + 2 + 3600
    assert first.bans.until("10.0.0.1", T0 + 10) == until
    assert first.bans.active(T0 + 10) == {"10.0.0.1": until}
    assert first.bans.until("10.0.0.1", until + 1) is None
    assert first.changes.since(0)[-1].subject == "10.0.0.1"  # the change feed has it too
    assert second.bans.unban("10.0.0.1") and first.bans.until("10.0.0.1", T0 + 10) is None


def test_a_ban_outlives_a_redis_restarted_empty(
    nodes: list[Store], redis_url: str, redis_prefix: str
) -> None:
    first, second = nodes
    for i in range(3):
        until = first.bans.record_failure("10.0.0.9", T0 + i, POLICY)
    assert until == T0 + 2 + 3600
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.scan_iter(match=f"{redis_prefix}*"))  # Redis comes back empty
    client.close()
    assert second.bans.until("10.0.0.9", T0 + 10) == until
    assert second.bans.active(T0 + 10) == {"10.0.0.9": until}
    assert first.bans.unban("10.0.0.9") and second.bans.until("10.0.0.9", T0 + 10) is None


def test_a_success_resets_and_old_failures_leave_the_window(nodes: list[Store]) -> None:
    first, second = nodes
    first.bans.record_failure("10.0.0.3", T0, POLICY)
    first.bans.record_failure("10.0.0.3", T0, POLICY)
    second.bans.record_success("10.0.0.3")
    assert first.bans.record_failure("10.0.0.3", T0, POLICY) is None
    assert first.bans.record_failure("10.0.0.3", T0 + 1, POLICY) is None
    assert first.bans.record_failure("10.0.0.3", T0 + 700, POLICY) is None  # 2 fell out
    assert first.bans.record_failure("10.0.0.3", T0 + 701, POLICY) is None


def test_commits_and_bans_are_announced(
    nodes: list[Store], redis_url: str, redis_prefix: str
) -> None:
    first, _ = nodes
    listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8.2
    listener.subscribe(notify.channel(redis_prefix))
    first.accounts.create("announced", plan="default", billing_day=1)
    for _ in range(3):
        first.bans.record_failure("10.0.0.4", T0, POLICY)
    heard = []
    for _ in range(50):
        message = listener.get_message(timeout=0.1)
        if message is not None:
            heard += notify.decode(message["data"])
        if len(heard) >= 3:
            break
    listener.close()
    assert heard[0] == notify.Note("account", "announced")
    assert notify.Note("ban", "10.0.0.4", T0 + 3600) in heard
    assert notify.Note("ban", "10.0.0.4") in heard


def test_while_redis_is_down_the_store_keeps_the_ban(sqlite_url: str) -> None:
    store = fleet_store(make_engine(sqlite_url), sync_client("redis://127.0.0.1:1/0"), "x:")
    store.migrate()
    for _ in range(2):
        assert store.bans.record_failure("10.0.0.5", T0, POLICY) is None
    assert store.bans.record_failure("10.0.0.5", T0, POLICY) == T0 + 3600
    assert store.bans.until("10.0.0.5", T0 + 1) == T0 + 3600
    assert store.bans.active(T0 + 1) == {"10.0.0.5": T0 + 3600}
    assert isinstance(store.notifier, RedisNotifier) and not store.notifier.health.up
    store.accounts.create("still-works", plan="default", billing_day=1)  # announcing fails quietly
    store.close()


def test_failures_count_in_the_order_they_happened(nodes: list[Store]) -> None:
    """A success at one node discounts the failures from before it that another node
    reports later (issue 12 item 5); an unban does the same for its ban."""
    first, second = nodes
    ip = "10.0.0.77"
    first.bans.record_failure(ip, T0, POLICY)
    second.bans.record_success(ip, T0 + 5)
    for i in range(1, 4):
        assert first.bans.record_failure(ip, T0 + i, POLICY) is None  # reported late
    assert first.bans.record_failure(ip, T0 + 6, POLICY) is None
    assert first.bans.record_failure(ip, T0 + 7, POLICY) is None
    assert first.bans.record_failure(ip, T0 + 8, POLICY) == T0 + 8 + 3600
    assert second.bans.until(ip, T0 + 9) == T0 + 8 + 3600


def test_a_ban_one_node_decided_is_announced_and_shared(
    nodes: list[Store], redis_url: str, redis_prefix: str
) -> None:
    first, second = nodes
    listener = sync_client(redis_url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8.2
    listener.subscribe(notify.channel(redis_prefix))
    listener.get_message(timeout=1.0)
    assert first.bans.record("10.0.0.78", T0 + 50, decided_at=T0)
    assert second.bans.until("10.0.0.78", T0 + 1) == T0 + 50
    heard: list[notify.Note] = []
    for _ in range(10):
        message = listener.get_message(timeout=0.5)
        if message is not None:
            heard += notify.decode(message["data"])
        if notify.Note("ban", "10.0.0.78", T0 + 50) in heard:
            break
    assert notify.Note("ban", "10.0.0.78", T0 + 50) in heard
    listener.close()
