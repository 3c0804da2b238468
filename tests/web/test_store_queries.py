"""The store queries the dashboard adds, on SQLite and PostgreSQL: one page of a parent's
sub-accounts searched and sorted in SQL, and daily usage per sub-account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.store import Store

from .helpers import NOW

Family = tuple[AccountRecord, dict[str, AccountRecord]]  # the parent, its sub-accounts by name

# NOW is 2026-11-20; with billing day 10 the current period began on 2026-11-10.
IN_PERIOD = date(2026, 11, 15)
BEFORE_PERIOD = date(2026, 11, 5)


@pytest.fixture
def db(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def family(db: Store) -> Family:
    parent = db.accounts.create("p", plan="default", billing_day=10, now=NOW)
    other = db.accounts.create("other_parent", plan="default", billing_day=10, now=NOW)
    subs = {}
    for index, name in enumerate(["bravo", "alpha", "Charlie", "delta_100%"]):
        subs[name] = db.accounts.create(
            name, parent_id=parent.id, now=NOW + timedelta(minutes=index), email=f"{name}@x.io"
        )
    db.accounts.create("alpha_of_other", parent_id=other.id, now=NOW)
    usage = {"alpha": (300, 1000), "bravo": (200, 50), "Charlie": (0, 7)}
    for name, (in_period, before) in usage.items():
        sub = subs[name]
        db.usage.record([UsageDelta(sub.id, parent.id, in_period)], IN_PERIOD)
        db.usage.record([UsageDelta(sub.id, parent.id, before)], BEFORE_PERIOD)
    return parent, subs


def names(db: Store, parent: AccountRecord, **kwargs: object) -> list[str]:
    page = db.accounts.sub_account_page(parent, NOW, **kwargs)  # type: ignore[arg-type]
    return [row.account.username for row in page.rows]


def test_page_rows_carry_period_and_total_usage(db: Store, family: Family) -> None:
    parent, _ = family
    page = db.accounts.sub_account_page(parent, NOW)
    usage = {row.account.username: (row.monthly_bytes, row.total_bytes) for row in page.rows}
    assert usage == {
        "Charlie": (0, 7),
        "alpha": (300, 1300),
        "bravo": (200, 250),
        "delta_100%": (0, 0),
    }
    assert page.matching == 4
    assert all(row.account.parent_username == "p" for row in page.rows)


def test_sorts_by_every_column_with_username_breaking_ties(db: Store, family: Family) -> None:
    parent, _ = family
    assert names(db, parent, sort="monthly", descending=True) == [
        "alpha",
        "bravo",
        "Charlie",
        "delta_100%",
    ]
    assert names(db, parent, sort="total") == ["delta_100%", "Charlie", "bravo", "alpha"]
    assert names(db, parent, sort="created") == ["bravo", "alpha", "Charlie", "delta_100%"]
    assert names(db, parent, sort="created", descending=True)[0] == "delta_100%"
    db.accounts.update("bravo", active=False)
    assert names(db, parent, sort="active")[0] == "bravo"
    with pytest.raises(ValueError):
        db.accounts.sub_account_page(parent, NOW, sort="password_hash")


def test_search_is_case_insensitive_literal_and_own_sub_accounts_only(
    db: Store, family: Family
) -> None:
    parent, _ = family
    assert names(db, parent, search="ALPHA") == ["alpha"]
    assert names(db, parent, search="%") == ["delta_100%"]  # a literal %, not a wildcard
    assert names(db, parent, search="_1") == ["delta_100%"]
    assert names(db, parent, search="charlie@x") == ["Charlie"]  # emails match too
    page = db.accounts.sub_account_page(parent, NOW, search="a", limit=2)
    assert page.matching == 4 and len(page.rows) == 2


def test_pages_do_not_overlap(db: Store, family: Family) -> None:
    parent, _ = family
    first = names(db, parent, limit=3)
    second = names(db, parent, offset=3, limit=3)
    assert len(first) == 3 and len(second) == 1 and not set(first) & set(second)


def test_daily_usage_per_sub_account_and_top_users(db: Store, family: Family) -> None:
    parent, subs = family
    end = date(2026, 12, 10)
    rows = db.usage.sub_account_daily(parent.id, BEFORE_PERIOD, end)
    assert [(name, day, nbytes) for _, name, day, nbytes in rows] == [
        ("Charlie", BEFORE_PERIOD, 7),
        ("alpha", BEFORE_PERIOD, 1000),
        ("alpha", IN_PERIOD, 300),
        ("bravo", BEFORE_PERIOD, 50),
        ("bravo", IN_PERIOD, 200),
    ]
    only = db.usage.sub_account_daily(parent.id, IN_PERIOD, end, account_ids=[subs["bravo"].id])
    assert [(name, nbytes) for _, name, _, nbytes in only] == [("bravo", 200)]
    top = db.usage.top_sub_accounts(parent.id, date(2026, 11, 10), end, limit=5)
    assert [(name, nbytes) for _, name, nbytes in top] == [("alpha", 300), ("bravo", 200)]
    assert len(db.usage.top_sub_accounts(parent.id, date(2026, 11, 10), end, limit=1)) == 1
