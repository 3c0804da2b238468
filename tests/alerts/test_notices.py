"""Which notices the store makes (on SQLite and PostgreSQL): one per account, kind, billing
period, threshold and limit; both thresholds when usage jumps past them; a parent's own
limit over its whole tree; deliveries only to the parent's webhooks; the backoff and the
day after which a delivery has failed; an address refused at delivery time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from meshproxy.config import Settings
from meshproxy.control.alerts import AlertService
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.alerts import Backoff, crossed
from meshproxy.domain.units import GB
from meshproxy.store import Store

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SECRET = "s3cret-of-sixteen-chars"


@pytest.fixture
def db(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def seen(store: Store, now: datetime = NOW) -> list[tuple[str, str, int]]:
    return [(n.account, n.kind.value, n.threshold) for n in store.alerts.record_notices(now)]


def test_thresholds_once_per_period_and_limit(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=15)
    sub = db.accounts.create("s", parent_id=parent.id, monthly_limit_gb=2, total_limit_gb=10)
    other = db.accounts.create("q", plan="default", billing_day=1)
    db.alerts.add_webhook(parent.id, "https://203.0.113.1/a", SECRET, NOW, max_webhooks=5)
    db.alerts.add_webhook(other.id, "https://203.0.113.2/b", SECRET, NOW, max_webhooks=5)
    assert seen(db) == []
    db.usage.record([UsageDelta(sub.id, parent.id, 21 * GB // 10)], NOW.date())  # 105 %
    assert seen(db) == [("s", "monthly", 80), ("s", "monthly", 100)]
    assert seen(db) == []  # made once
    db.usage.record([UsageDelta(sub.id, parent.id, 6 * GB)], NOW.date())  # total 8.1 of 10
    assert seen(db) == [("s", "total", 80)]
    next_period = NOW + timedelta(days=30)  # from Dec 15: monthly usage starts again at 0
    assert seen(db, next_period) == [("s", "total", 80)]
    db.accounts.update("s", monthly_limit_gb=10)  # a new limit: its thresholds count anew
    assert seen(db) == [("s", "monthly", 80)]
    # Only the parent's webhook receives its sub-account's notices, one delivery each.
    jobs = db.alerts.claim_deliveries(NOW + timedelta(days=31), 60, limit=100)
    assert {j.url for j in jobs} == {"https://203.0.113.1/a"} and len(jobs) == 5
    assert db.alerts.claim_deliveries(NOW + timedelta(days=31), 60) == []  # leased


def test_a_parent_limit_counts_its_whole_tree(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=1, monthly_limit_gb=1)
    sub = db.accounts.create("s", parent_id=parent.id)
    db.usage.record([UsageDelta(sub.id, parent.id, GB)], NOW.date())
    [notice_80, notice_100] = db.alerts.record_notices(NOW)
    assert (notice_80.account, notice_80.parent, notice_80.threshold) == ("p", "p", 80)
    assert notice_100.period_start == date(2026, 11, 1) and notice_100.usage_bytes == GB
    assert db.alerts.claim_deliveries(NOW, 60) == []  # no webhook, no delivery
    assert [v.notice.threshold for v in db.alerts.history(parent.id)] == [100, 80]


def test_backoff_doubles_up_to_its_cap_and_gives_up_after_a_day() -> None:
    backoff = Backoff(base=60, most=3600, give_up_after=86_400)
    created = NOW
    assert backoff.next_attempt(1, created, NOW) == NOW + timedelta(seconds=60)
    assert backoff.next_attempt(3, created, NOW) == NOW + timedelta(seconds=240)
    assert backoff.next_attempt(20, created, NOW) == NOW + timedelta(seconds=3600)
    late = created + timedelta(hours=23, minutes=30)
    assert backoff.next_attempt(20, created, late) is None
    assert crossed(799_999_999, 1) == [] and crossed(800_000_000, 1) == [80]
    assert crossed(10**12, 0) == []


def test_a_refused_address_fails_the_attempt_and_a_delivery_gives_up(
    db: Store, make_settings: Any
) -> None:
    settings: Settings = make_settings(alerts={"retry_for": 0.01, "retry_base": 0.01})
    parent = db.accounts.create("p", plan="default", billing_day=1, monthly_limit_gb=1)
    db.alerts.add_webhook(parent.id, "https://127.0.0.1:9/hook", SECRET, NOW, max_webhooks=1)
    db.usage.record([UsageDelta(parent.id, None, GB)], datetime.now(UTC).date())
    service = AlertService(settings, db)
    try:
        service.run_once()
    finally:
        service.close()
    [hundred, eighty] = db.alerts.history(parent.id)
    for view in (hundred, eighty):
        [delivery] = view.deliveries
        assert delivery.state == "failed"
        [attempt] = delivery.attempts
        assert attempt.status is None
        assert attempt.error == "The host 127.0.0.1 resolves to 127.0.0.1, a loopback address."


def test_many_accounts_are_read_in_chunks(db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from meshproxy.store import alerts

    monkeypatch.setattr(alerts, "CHUNK", 2)  # PostgreSQL's parameter cap, made small
    parents = [db.accounts.create(f"p{i}", plan="default", billing_day=1) for i in range(3)]
    for parent in parents:
        db.alerts.add_webhook(parent.id, "https://203.0.113.1/a", SECRET, NOW, max_webhooks=1)
        sub = db.accounts.create(f"s{parent.id}", parent_id=parent.id, monthly_limit_gb=1)
        db.usage.record([UsageDelta(sub.id, parent.id, GB)], NOW.date())
    assert len(seen(db)) == 6
    assert len(db.alerts.claim_deliveries(NOW, 60, limit=100)) == 6


def test_a_check_with_nothing_new_writes_nothing(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=1, monthly_limit_gb=1)
    db.usage.record([UsageDelta(parent.id, None, GB)], NOW.date())
    assert len(seen(db)) == 2
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert seen(db) == []
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert statements and not [s for s in statements if s.lstrip().upper().startswith("INSERT")]


def test_a_webhook_deleted_while_its_delivery_is_sent(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=1, monthly_limit_gb=1)
    webhook = db.alerts.add_webhook(parent.id, "https://203.0.113.1/a", SECRET, NOW, max_webhooks=1)
    db.usage.record([UsageDelta(parent.id, None, GB)], NOW.date())
    db.alerts.record_notices(NOW)
    jobs = db.alerts.claim_deliveries(NOW, 60)
    assert len(jobs) == 2 and db.alerts.delete_webhook(parent.id, webhook.id)
    for job in jobs:  # answered after the deletion: nothing to record, no error
        db.alerts.finish_attempt(
            job, NOW, status=204, error=None, duration_ms=1, retry_at=None, delivered=True
        )
    assert [v.deliveries for v in db.alerts.history(parent.id)] == [[], []]
