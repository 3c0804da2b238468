"""Failures count in the order they happened, whichever face saw them (issue 12 item 5):
a proxy reports its failures a moment later, stamped with when they happened; a success
(or an unban) in between discounts the ones from before it, however late they arrive."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from meshproxy.domain.bans import BanBook, BanPolicy
from meshproxy.store import Store

POLICY = BanPolicy(max_failures=3, window_seconds=600, ban_seconds=100)
IP = "203.0.113.77"


def test_failures_reported_after_a_later_success_do_not_count(db: Store) -> None:
    t = time.time()
    db.bans.record_failure(IP, t, POLICY)
    db.bans.record_success(IP, t + 5)  # the API's success, between a proxy's reports
    # The proxy's failures from before the success arrive now: not counted.
    assert db.bans.record_failure(IP, t + 1, POLICY) is None
    assert db.bans.record_failure(IP, t + 2, POLICY) is None
    assert db.bans.record_failure(IP, t + 3, POLICY) is None
    # Those after it are: three ban.
    assert db.bans.record_failure(IP, t + 6, POLICY) is None
    assert db.bans.record_failure(IP, t + 7, POLICY) is None
    assert db.bans.record_failure(IP, t + 8, POLICY) == t + 8 + 100


def test_an_earlier_success_reported_late_wipes_only_what_came_before_it(db: Store) -> None:
    t = time.time()
    for i in range(2):
        db.bans.record_failure(IP, t + 10 + i, POLICY)
    db.bans.record_success(IP, t)  # a proxy's success from before them
    assert db.bans.record_failure(IP, t + 20, POLICY) == t + 20 + 100


def test_a_ban_a_node_decided_is_kept_unless_lifted_after_it(db: Store) -> None:
    t = time.time()
    assert db.bans.record(IP, t + 100, decided_at=t)
    assert db.bans.until(IP, t + 1) == t + 100
    assert db.bans.unban(IP)
    # A report from before the unban (failures, the ban they made) does not bring it back.
    assert not db.bans.record(IP, t + 100, decided_at=t)
    for i in range(3):
        assert db.bans.record_failure(IP, t - 1 + i * 0.1, POLICY) is None
    assert db.bans.until(IP, t + 1) is None


def test_the_process_book_holds_bans_of_either_face(db: Store) -> None:
    """With proxies in the process the store shares their ban book: a ban written by
    one face is read by the other at once, and an unban lifts it in both."""
    db.bans.local = BanBook(POLICY)
    t = time.time()
    db.bans.local.record_failure(IP, t)
    assert db.bans.until(IP, t) is None
    for i in range(1, 3):
        db.bans.local.record_failure(IP, t + i * 0.01)
    assert db.bans.until(IP, t + 1) is not None  # the proxy's ban, before any report
    assert db.bans.unban(IP)  # lifted although the store had not been told yet
    assert not db.bans.local.is_banned(IP, t + 1)
    assert db.bans.record_failure(IP, t + 1, POLICY) is None
    db.bans.record_failure(IP, t + 2, POLICY)
    until = db.bans.record_failure(IP, t + 3, POLICY)  # the API's ban
    assert until is not None and db.bans.local.is_banned(IP, t + 4)  # the proxies' too


def test_successes_and_bans_written_at_once_for_one_address_all_land(db: Store) -> None:
    """Many requests from one address succeed at the same moment (API worker threads):
    each success's reset row, and each ban of the address, is one upsert, never a second
    INSERT of the same key (an IntegrityError on the loser)."""
    t = time.time()
    barrier = threading.Barrier(8)

    def succeed(i: int) -> None:
        barrier.wait()
        db.bans.record_success(IP, t + i)
        db.bans.record(IP, t + 100 + i)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(succeed, range(8)))  # re-raises any thread's error
    # The latest of each was kept: failures before t + 7 do not count, the ban ends last.
    assert db.bans.record_failure(IP, t + 6, POLICY) is None
    assert db.bans.until(IP, t) == t + 107
