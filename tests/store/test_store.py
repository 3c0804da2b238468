"""The store on both backends: SQLite (WAL) and the local PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.bans import BanPolicy
from meshproxy.store import Store, StoreUnavailable
from meshproxy.store.errors import Conflict, LimitReached
from meshproxy.store.migrate import alembic_config, current_revision, upgrade
from meshproxy.store.tables import metadata

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def db(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def test_migrations_reach_head(db: Store) -> None:
    assert current_revision(db.engine) is not None
    db.migrate()  # running again is a no-op


def test_the_migrated_schema_is_the_tables(db: Store) -> None:
    """Alembic's target (the Core tables) and what the migrations built agree: nothing for
    `alembic revision --autogenerate` to write."""
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_session_epoch_migration_keeps_accounts(store_url: str) -> None:
    """0003 adds accounts.session_epoch (0 for existing rows) and can be taken back."""
    opened = Store.open(store_url, migrate=False)
    try:
        upgrade(opened.engine, "0002")
        with opened.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO accounts (username, active, monthly_limit_gb, total_limit_gb,"
                    " total_bytes, created_at) VALUES ('old', true, 0, 0, 0, :now)"
                ),
                {"now": NOW},
            )
        opened.migrate()
        old = opened.accounts.get("old")
        assert old is not None and old.session_epoch == 0
        assert opened.accounts.bump_session_epoch("old") == 1
        command.downgrade(alembic_config(opened.engine), "0002")
        columns = {c["name"] for c in sa.inspect(opened.engine).get_columns("accounts")}
        assert "session_epoch" not in columns and "folded_bytes" in columns
        opened.migrate()
        assert opened.accounts.get("old").session_epoch == 0  # type: ignore[union-attr]
    finally:
        opened.close()


def test_session_epoch_rises_on_logout_and_password_change_only(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=1)
    assert parent.session_epoch == 0
    start = db.changes.latest_id()
    assert db.accounts.bump_session_epoch("p") == 1
    assert db.accounts.bump_session_epoch("p") == 2
    assert db.changes.since(start) == []  # proxies need not hear of it
    assert db.accounts.bump_session_epoch("nobody") is None
    updated = db.accounts.update("p", first_name="A", active=False)
    assert updated is not None and updated.session_epoch == 2
    updated = db.accounts.update("p", password_hash="$argon2id$x")
    assert updated is not None and updated.session_epoch == 3
    assert db.accounts.get("p").session_epoch == 3  # type: ignore[union-attr]


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    opened = Store.open(sqlite_url)
    with opened.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    opened.close()


def test_accounts_crud_and_unique_usernames(db: Store) -> None:
    parent = db.accounts.create("pm_parent", plan="default", billing_day=10, proxies=["open"])
    sub = db.accounts.create("pm_sub", parent_id=parent.id, email="a@b.c", now=NOW)
    assert sub.parent_username == "pm_parent" and sub.created_at == NOW
    with pytest.raises(Conflict):
        db.accounts.create("pm_sub", parent_id=parent.id)
    assert db.accounts.count_sub_accounts(parent.id) == 1
    updated = db.accounts.update("pm_sub", active=False, monthly_limit_gb=5, email=None)
    assert updated is not None and not updated.active and updated.limits.monthly_gb == 5
    assert updated.email is None
    assert db.accounts.update("nobody", active=False) is None
    assert [a.username for a in db.accounts.list(parents=True)] == ["pm_parent"]
    assert [a.username for a in db.accounts.list(parent_id=parent.id)] == ["pm_sub"]
    with pytest.raises(TypeError):
        db.accounts.update("pm_sub", **{"username": "x"})


def test_usage_counts_for_account_and_parent_and_survives_sub_deletion(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=15)
    sub = db.accounts.create("s", parent_id=parent.id)
    before_period = date(2026, 11, 14)  # the period that contains NOW began on the 15th
    db.usage.record([UsageDelta(sub.id, parent.id, 100)], before_period)
    db.usage.record(
        [UsageDelta(sub.id, parent.id, 1_000), UsageDelta(parent.id, None, 7)], date(2026, 11, 20)
    )
    db.usage.record([UsageDelta(sub.id, parent.id, 5)], date(2026, 11, 20))
    assert db.usage.of(sub, NOW) == (1_005, 1_105)
    assert db.usage.of(parent, NOW) == (1_012, 1_112)
    assert db.usage.of_many([sub, parent], NOW) == {
        sub.id: (1_005, 1_105), parent.id: (1_012, 1_112)
    }
    assert db.usage.daily(sub.id, date(2026, 11, 1), date(2026, 12, 1)) == [
        (before_period, 100),
        (date(2026, 11, 20), 1_005),
    ]
    assert db.accounts.delete("s")
    # Bytes counted for a sub-account deleted meanwhile still count for its parent.
    db.usage.record([UsageDelta(sub.id, parent.id, 50)], date(2026, 11, 20))
    assert db.usage.of(parent, NOW) == (1_062, 1_162)
    assert not db.accounts.delete("s")


def test_ips_hostnames_and_proxies(db: Store) -> None:
    parent = db.accounts.create("p", plan="default", billing_day=1, proxies=["open"])
    sub = db.accounts.create("s", parent_id=parent.id)
    db.access.add_ip(sub, "192.0.2.1")
    with pytest.raises(Conflict):
        db.access.add_ip(parent, "192.0.2.1")  # one IP means one account
    db.access.add_hostname(parent, "home.example.com")
    with pytest.raises(Conflict):
        db.access.add_hostname(sub, "home.example.com")
    assert db.access.list_ips(sub) == ["192.0.2.1"] and db.access.list_ips(parent) == []
    assert db.access.list_hostnames(parent) == ["home.example.com"]
    assert not db.access.authorize_proxy(parent, "open")
    assert db.access.authorize_proxy(parent, "world")
    assert db.access.authorized_proxies(parent) == ["open", "world"]
    views = {view.account.username: view for view in db.accounts.views(NOW)}
    assert views["s"].proxies == ("open", "world")  # a sub-account uses its parent's proxies
    assert views["s"].ips == ("192.0.2.1",)
    assert views["p"].hostnames == ("home.example.com",)
    assert db.access.deauthorize_proxy(parent, "world")
    assert not db.access.deauthorize_proxy(parent, "world")
    assert db.access.delete_ip(sub, "192.0.2.1") and not db.access.delete_ip(sub, "192.0.2.1")
    assert db.access.delete_hostname(parent, "home.example.com")


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("ip", ["192.0.2.9", "192.0.2.1", "198.51.100.7"]),
        ("hostname", ["zeta.example.com", "alpha.example.com", "mid.example.org"]),
    ],
)
def test_ip_and_hostname_operations_behave_alike(db: Store, kind: str, values: list[str]) -> None:
    """Listed in the order added; deleting touches only the caller's own; every add and
    delete (even of nothing) writes a change row for the account; duplicates conflict."""
    add = getattr(db.access, f"add_{kind}")
    delete = getattr(db.access, f"delete_{kind}")
    listed = getattr(db.access, f"list_{kind}s")
    owner = db.accounts.create("owner", plan="default", billing_day=1)
    other = db.accounts.create("other", plan="default", billing_day=1)
    start = db.changes.latest_id()
    for value in values:
        add(owner, value)
    assert listed(owner) == values and listed(other) == []
    with pytest.raises(Conflict):
        add(other, values[0])
    assert listed(other) == []
    assert not delete(other, values[1])  # not its own
    assert delete(owner, values[1])
    assert listed(owner) == [values[0], values[2]]
    subjects = [(c.kind, c.subject) for c in db.changes.since(start)]
    assert subjects == [("account", "owner")] * 3 + [("account", "other"), ("account", "owner")]


def test_change_feed_names_what_changed(db: Store) -> None:
    start = db.changes.latest_id()
    parent = db.accounts.create("p", plan="default", billing_day=1)
    db.accounts.create("s", parent_id=parent.id)
    db.access.authorize_proxy(parent, "open")  # inherited by the sub-account: both change
    changes = db.changes.since(start)
    assert [(c.kind, c.subject) for c in changes] == [
        ("account", "p"),
        ("account", "s"),
        ("account", "p"),
        ("account", "s"),
    ]
    assert db.changes.since(changes[-1].id) == []
    db.accounts.delete("p")  # the parent and its sub-accounts go
    assert {c.subject for c in db.changes.since(changes[-1].id)} == {"p", "s"}
    assert db.accounts.get("s") is None


def test_bans_are_shared_through_the_store(db: Store) -> None:
    policy = BanPolicy(max_failures=3, window_seconds=600, ban_seconds=100)
    assert db.bans.record_failure("203.0.113.9", 0, policy) is None
    db.bans.record_success("203.0.113.9")
    assert db.bans.record_failure("203.0.113.9", 1, policy) is None
    assert db.bans.record_failure("203.0.113.9", 2, policy) is None
    assert db.bans.record_failure("203.0.113.9", 3, policy) == 103
    assert db.bans.until("203.0.113.9", 50) == 103
    assert db.bans.active(50) == {"203.0.113.9": 103}
    assert db.bans.until("203.0.113.9", 103) is None
    assert db.bans.unban("203.0.113.9")
    assert db.bans.active(50) == {}
    assert db.changes.since(0)[-1].kind == "ban"


def test_unreachable_database_is_store_unavailable(tmp_path: object) -> None:
    store = Store(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    with pytest.raises(StoreUnavailable):
        store.ping()


RACERS = 10  # threads writing at once, each on its own pooled connection


def _race(write: Callable[[int], object]) -> list[object]:
    """Run write(0..RACERS-1) in threads released together; each one's result or error."""
    start = threading.Barrier(RACERS, timeout=10)

    def one(i: int) -> object:
        start.wait()
        try:
            return write(i)
        except LimitReached as error:
            return error

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS), timeout=60))


@pytest.mark.parametrize("limit", [1, 3])
def test_sub_account_limit_holds_when_creates_race(db: Store, limit: int) -> None:
    db.accounts.create("other", parent_id=db.accounts.create("q", plan="default").id)
    for attempt in range(3):  # a race lost once may be won the next time: several rounds
        parent = db.accounts.create(f"p{attempt}", plan="default", billing_day=1)
        outcomes = _race(
            lambda i, parent_id=parent.id, attempt=attempt: db.accounts.create(  # type: ignore[misc]
                f"s{attempt}_{i}", parent_id=parent_id, max_siblings=limit
            )
        )
        created = [o for o in outcomes if not isinstance(o, LimitReached)]
        assert len(created) == limit and db.accounts.count_sub_accounts(parent.id) == limit
        assert all(o.limit == limit for o in outcomes if isinstance(o, LimitReached))
    with pytest.raises(LimitReached):  # and still full afterwards
        db.accounts.create("late", parent_id=parent.id, max_siblings=limit)
    assert db.accounts.get("late") is None
    db.accounts.create("late", parent_id=parent.id, max_siblings=limit + 1)


def test_proxy_limit_holds_when_adds_race(db: Store) -> None:
    names = [f"proxy{i}" for i in range(RACERS)]
    for attempt in range(3):
        parent = db.accounts.create(f"p{attempt}", plan="default", proxies=["gone"])
        outcomes = _race(
            lambda i, parent=parent: db.access.authorize_proxy(  # type: ignore[misc]
                parent, names[i], max_proxies=3, counting=names
            )
        )
        assert outcomes.count(True) == 3  # "gone" (not configured any more) does not count
        assert len(db.access.authorized_proxies(parent)) == 4
    assert not db.access.authorize_proxy(parent, "gone", max_proxies=3, counting=names)
    with pytest.raises(LimitReached):
        db.access.authorize_proxy(parent, "proxy-late", max_proxies=3, counting=names)
