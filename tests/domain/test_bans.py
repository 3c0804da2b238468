from __future__ import annotations

from meshproxy.domain.bans import BanBook, BanPolicy

POLICY = BanPolicy(max_failures=4, window_seconds=600, ban_seconds=10_800)


def test_fourth_failure_within_window_bans_for_three_hours() -> None:
    book = BanBook(POLICY)
    for second in (0, 10, 20):
        assert book.record_failure("198.51.100.1", second) is None
    assert book.record_failure("198.51.100.1", 30) == 30 + 10_800
    assert book.is_banned("198.51.100.1", 31)
    assert book.is_banned("198.51.100.1", 10_829)
    assert not book.is_banned("198.51.100.1", 10_830)
    assert not book.is_banned("198.51.100.2", 31)


def test_failures_outside_the_window_do_not_count() -> None:
    book = BanBook(POLICY)
    for second in (0, 200, 400):
        book.record_failure("ip", second)
    assert book.record_failure("ip", 601) is None  # the one at 0 has left the window
    assert book.record_failure("ip", 602) is not None


def test_success_resets_the_count() -> None:
    book = BanBook(POLICY)
    for second in range(3):
        book.record_failure("ip", second)
    book.record_success("ip")
    assert book.record_failure("ip", 10) is None


def test_adopted_bans_and_prune() -> None:
    book = BanBook(POLICY)
    book.ban("ip", 100.0)
    book.ban("ip", 50.0)  # an earlier end never shortens a ban
    assert book.banned_until("ip", 60) == 100.0
    book.record_failure("other", 0)
    book.prune(1_000)
    assert book.banned_until("ip", 60) is None
    assert book.record_failure("other", 1_000) is None
