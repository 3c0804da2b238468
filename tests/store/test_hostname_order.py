"""The store tells the proxies in which order hostnames were added, over all accounts: an
address two accounts' hostnames resolve to belongs to the earlier one (issue 12 item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

from meshproxy.store import Store


def test_account_views_give_each_hostnames_row_order(db: Store) -> None:
    first = db.create_account("first_host", billing_day=1)
    later = db.create_account("later_host", billing_day=1)
    db.add_hostname(first, "a.example")
    db.add_hostname(later, "b.example")
    db.add_hostname(first, "c.example")
    views = {v.account.username: v for v in db.account_views(datetime.now(UTC))}
    a, c = views["first_host"].hostname_ids
    (b,) = views["later_host"].hostname_ids
    assert views["first_host"].hostnames == ("a.example", "c.example")
    assert a < b < c
    partial = db.account_views(datetime.now(UTC), ["later_host"])
    assert partial[0].hostname_ids == (b,)
