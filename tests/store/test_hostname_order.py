"""The store tells the proxies in which order hostnames were added, over all accounts: an
address two accounts' hostnames resolve to belongs to the earlier one (issue 12 item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

from meshproxy.store import Store


def test_account_views_give_each_hostnames_row_order(db: Store) -> None:
    first = db.accounts.create("first_host", billing_day=1)
    later = db.accounts.create("later_host", billing_day=1)
    db.access.add_hostname(first, "a.example")
    db.access.add_hostname(later, "b.example")
    db.access.add_hostname(first, "c.example")
    views = {v.account.username: v for v in db.accounts.views(datetime.now(UTC))}
    a, c = views["first_host"].hostname_ids
    (b,) = views["later_host"].hostname_ids
    assert views["first_host"].hostnames == ("a.example", "c.example")
    assert a < b < c
    partial = db.accounts.views(datetime.now(UTC), ["later_host"])
    assert partial[0].hostname_ids == (b,)
