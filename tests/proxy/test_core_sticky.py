"""Sticky sessions (core/sticky.py) through the egress pool, with a fake clock."""

from __future__ import annotations

import random

from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool
from meshproxy.proxy.core.options import RequestOptions, parse_options
from meshproxy.proxy.core.sticky import window_index

MEMBERS = [Egress(f"10.0.{i // 10}.{i % 10 + 1}", "US" if i % 2 else "DE") for i in range(40)]
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def node(clock: Clock, members: list[Egress] = MEMBERS, seed: int = 1) -> EgressPool:
    pool = EgressPool(members, geo=True, rng=random.Random(seed))
    pool.sessions.clock = clock
    return pool


def session(
    sid: str = "s1", account: int = 7, session_minutes: int | None = None,
    country: str | None = None,
) -> RequestOptions:
    return RequestOptions(session=sid, session_account=account, session_minutes=session_minutes,
                          country=country)


def address(pool: EgressPool, options: RequestOptions, avoid: Egress | None = None) -> str:
    choice = pool.choose(options, 4, avoid=avoid)
    assert isinstance(choice, EgressChoice), choice
    assert choice.address is not None
    return choice.address


def test_a_session_keeps_its_egress_for_sesstime_from_first_use_then_changes() -> None:
    clock = Clock()
    pool = node(clock)
    first = address(pool, session(session_minutes=5))
    for _ in range(50):
        clock.now += 5 * 60 / 51  # up to just before five minutes from first use
        assert address(pool, session(session_minutes=5)) == first
    seen = set()
    for _ in range(20):  # each later window: a new egress (the ranking of a new index)
        clock.now += 5 * 60 + 1
        seen.add(address(pool, session(session_minutes=5)))
    assert len(seen) > 5


def test_every_node_derives_the_same_egress_without_sharing_anything() -> None:
    clock = Clock()
    nodes = [node(clock, seed=seed) for seed in range(3)]
    for n in range(200):
        options = session(f"s{n}", account=n % 3)
        assert len({address(pool, options) for pool in nodes}) == 1
    # Sessions differ by account and id, and spread over the pool.
    assert len({address(nodes[0], session(f"s{n}")) for n in range(200)}) > 30
    assert address(nodes[0], session("x", account=1)) != address(nodes[0], session("x", 2)) \
        or address(nodes[0], session("y", account=1)) != address(nodes[0], session("y", 2))


def test_a_member_that_left_the_pool_is_replaced_and_only_its_sessions_move() -> None:
    clock = Clock()
    full = node(clock)
    winners = {n: address(full, session(f"s{n}")) for n in range(300)}
    gone = winners[0]
    smaller = node(clock, [e for e in MEMBERS if e.address != gone])
    for n, winner in winners.items():
        now = address(smaller, session(f"s{n}"))
        assert now != gone
        if winner != gone:
            assert now == winner  # rendezvous hashing: nothing else moves


def test_country_and_session_combine_and_a_failed_egress_is_replaced_alike() -> None:
    clock = Clock()
    a, b = node(clock), node(clock)
    options = session(country="US")
    pinned = address(a, options)
    assert dict((str(e.address), e.country) for e in MEMBERS)[pinned] == "US"
    failed = next(e for e in MEMBERS if e.address == pinned)
    replacement = address(a, options, avoid=failed)
    assert replacement != pinned
    assert address(b, options, avoid=failed) == replacement  # the same on every node
    assert dict((str(e.address), e.country) for e in MEMBERS)[replacement] == "US"


def test_nodes_that_first_see_a_session_in_one_window_agree_for_its_whole_time() -> None:
    clock = Clock()
    key = (7, "s1", 10)
    # First use just before the session's grid boundary on node a; node b sees it after.
    while window_index(key, clock.now + 1) == window_index(key, clock.now):
        clock.now += 1
    a = node(clock)
    first = address(a, session(session_minutes=10))
    clock.now += 2  # past the grid boundary
    late = node(clock)
    clock.now += 9 * 60  # still within ten minutes of node a's first use
    assert address(a, session(session_minutes=10)) == first
    # Node b first saw it in the next window: it holds that one's egress for its ten.
    assert address(late, session(session_minutes=10)) == address(
        node(clock), session(session_minutes=10)
    )


def test_the_session_headers() -> None:
    options = parse_options([("session", b"abc.1"), ("session-time", b"30")])
    assert (options.session, options.session_minutes) == ("abc.1", 30)
