"""Folding meters' flushes into the store: each flush once, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.folds import FoldBatch, FoldOutcome
from meshproxy.store import Store
from meshproxy.store.migrate import alembic_config, current_revision, upgrade

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = date(2026, 11, 20)


@pytest.fixture
def accounts(db: Store) -> tuple[AccountRecord, AccountRecord]:
    parent = db.accounts.create("p", plan="default", billing_day=1)
    return parent, db.accounts.create("s", parent_id=parent.id)


def _batch(
    sub: AccountRecord,
    meter: str,
    first: int,
    last: int,
    generation: str | None,
    nbytes: int = 100,
    day: date = DAY,
) -> FoldBatch:
    return FoldBatch(
        meter, first, last, day, (UsageDelta(sub.id, sub.parent_id, nbytes),), generation
    )


def _figures(db: Store, name: str, generation: str | None = None) -> tuple[int, int]:
    """(total_bytes, folded_bytes) of the account."""
    (view,) = db.accounts.views(NOW, [name], generation=generation)
    return view.total_bytes, view.folded_bytes


def _changed(db: Store, since: int) -> set[str]:
    return {c.subject for c in db.changes.since(since) if c.kind == "account"}


def test_a_batch_folded_again_is_skipped(db: Store, accounts: tuple[AccountRecord, ...]) -> None:
    _, sub = accounts
    batch = _batch(sub, "node-a", 1, 3, "g1")
    first = db.folds.fold([batch], NOW, "g1")
    assert first == FoldOutcome(folded=1, nbytes=100, folded_through={"node-a": 3})
    again = db.folds.fold([batch, _batch(sub, "node-a", 2, 2, "g1")], NOW, "g1")
    assert again == FoldOutcome(skipped=2, folded_through={"node-a": 3})
    assert _figures(db, "s") == (100, 100) and _figures(db, "p") == (100, 100)
    assert db.usage.daily(sub.id, DAY, DAY + timedelta(days=1)) == [(DAY, 100)]


def test_the_same_flushes_twice_in_one_fold_count_once(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    _, sub = accounts
    batch = _batch(sub, "node-a", 1, 1, "g1")
    outcome = db.folds.fold([batch, batch], NOW, "g1")
    assert (outcome.folded, outcome.skipped, outcome.nbytes) == (1, 1, 100)
    assert _figures(db, "s") == (100, 100)


def test_a_nodes_journal_then_the_shared_batch_of_the_same_flushes(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    """A node that found Redis empty writes its journal; the folder later finds the same
    flushes in Redis (restored) and must not count them again."""
    _, sub = accounts
    journal = [_batch(sub, "node-a", n, n, None, nbytes=10) for n in (1, 2, 3)]
    assert db.folds.fold(journal, NOW).folded == 3
    shared = db.folds.fold([_batch(sub, "node-a", 1, 3, "g1", nbytes=30)], NOW, "g1")
    assert (shared.folded, shared.skipped, shared.folded_through) == (0, 1, {"node-a": 3})
    assert _figures(db, "s") == (30, 0)  # journal bytes never went into the shared counters


def test_a_partly_folded_batch_is_added_and_logged(
    db: Store, accounts: tuple[AccountRecord, ...], caplog: pytest.LogCaptureFixture
) -> None:
    _, sub = accounts
    db.folds.fold([_batch(sub, "node-a", 1, 2, None)], NOW)
    with caplog.at_level(logging.ERROR, logger="meshproxy.store.folds"):
        outcome = db.folds.fold([_batch(sub, "node-a", 2, 4, None, nbytes=7)], NOW)
    assert outcome == FoldOutcome(folded=1, overlapping=1, nbytes=7, folded_through={"node-a": 4})
    assert _figures(db, "s")[0] == 107
    (record,) = caplog.records
    assert "node-a" in record.message and "2-4" in record.message and "7 bytes" in record.message


def test_folded_through_per_meter_touched(db: Store, accounts: tuple[AccountRecord, ...]) -> None:
    _, sub = accounts
    outcome = db.folds.fold(
        [
            _batch(sub, "node-a", 1, 3, None),
            _batch(sub, "node-b", 2, 2, None),
            _batch(sub, "node-a", 5, 6, None),
        ],
        NOW,
    )
    assert outcome.folded_through == {"node-a": 3, "node-b": 0}
    outcome = db.folds.fold([_batch(sub, "node-b", 1, 1, None)], NOW)
    assert outcome.folded_through == {"node-b": 2}
    outcome = db.folds.fold([_batch(sub, "node-a", 4, 4, None)], NOW)
    assert outcome.folded_through == {"node-a": 6}
    assert db.folds.fold([], NOW) == FoldOutcome()


def test_batches_of_several_days(db: Store, accounts: tuple[AccountRecord, ...]) -> None:
    parent, sub = accounts
    yesterday = DAY - timedelta(days=1)
    db.folds.fold(
        [
            _batch(sub, "node-a", 1, 1, "g1", nbytes=5, day=yesterday),
            _batch(sub, "node-b", 1, 1, "g1", nbytes=6, day=yesterday),
            _batch(sub, "node-a", 2, 2, None, nbytes=7),
            FoldBatch("node-b", 2, 2, DAY, (UsageDelta(parent.id, None, 8),), "g1"),
        ],
        NOW,
        "g1",
    )
    end = DAY + timedelta(days=1)
    assert db.usage.daily(sub.id, yesterday, end) == [(yesterday, 11), (DAY, 7)]
    assert db.usage.daily(parent.id, yesterday, end) == [(yesterday, 11), (DAY, 15)]
    assert _figures(db, "s") == (18, 11) and _figures(db, "p") == (26, 19)


def test_a_new_generation_starts_folded_bytes_again(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    _, sub = accounts
    assert db.folds.generation() is None
    db.folds.fold([_batch(sub, "node-a", 1, 1, "g1")], NOW, "g1")
    assert db.folds.generation() == "g1" and _figures(db, "s") == (100, 100)
    # Redis lost its data: g2. A late g1 batch still counts, but not as folded.
    outcome = db.folds.fold(
        [_batch(sub, "node-a", 2, 2, "g1"), _batch(sub, "node-b", 1, 1, "g2", nbytes=5)],
        NOW,
        "g2",
    )
    assert outcome.folded == 2
    assert db.folds.generation() == "g2" and _figures(db, "s") == (205, 5)
    assert _figures(db, "p") == (205, 5)
    # An older (or the same) generation changes nothing.
    db.folds.fold([_batch(sub, "node-b", 2, 2, "g2", nbytes=1)], NOW, "g1")
    db.folds.fold([_batch(sub, "node-b", 3, 3, "g2", nbytes=1)], NOW, "g2")
    assert db.folds.generation() == "g2" and _figures(db, "s") == (207, 7)
    # A fold that names no generation folds into the stored one.
    db.folds.fold([_batch(sub, "node-b", 4, 4, "g2", nbytes=1)], NOW)
    assert _figures(db, "s") == (208, 8)


def test_only_bytes_not_folded_are_announced(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    """Nodes learn of bytes outside the shared counters by change rows (and reload)."""
    _, sub = accounts
    other = db.accounts.create("o", plan="default", billing_day=1)
    db.folds.fold([_batch(sub, "node-a", 1, 1, "g1")], NOW, "g1")
    start = db.changes.latest_id()
    db.folds.fold([_batch(sub, "node-a", 2, 2, "g1")], NOW, "g1")
    assert _changed(db, start) == set()  # counted in the current generation
    db.folds.fold([_batch(sub, "node-a", 3, 3, None)], NOW, "g1")
    assert _changed(db, start) == {"s", "p"}
    start = db.changes.latest_id()
    db.folds.fold([FoldBatch("node-b", 1, 1, DAY, (UsageDelta(other.id, None, 3),), "g0")], NOW)
    assert _changed(db, start) == {"o"}  # an old generation's bytes
    start = db.changes.latest_id()
    db.folds.fold([_batch(sub, "node-a", 3, 3, None)], NOW)  # skipped: nothing added
    assert _changed(db, start) == set()
    db.accounts.delete("s")
    start = db.changes.latest_id()
    db.folds.fold([_batch(sub, "node-a", 4, 4, None)], NOW)
    assert _changed(db, start) == {"p"}  # the deleted sub-account's bytes count for its parent
    assert _figures(db, "p")[0] == 400


def test_account_views_zero_folded_bytes_of_another_generation(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    _, sub = accounts
    assert _figures(db, "s", generation="g1") == (0, 0)
    db.folds.fold([_batch(sub, "node-a", 1, 1, "g1")], NOW, "g1")
    assert _figures(db, "s", generation="g1") == (100, 100)
    assert _figures(db, "s", generation="g2") == (100, 0)
    assert _figures(db, "s") == (100, 100)
    views = db.accounts.views(NOW, generation="g0")
    assert {v.account.username: v.folded_bytes for v in views} == {"p": 0, "s": 0}


def test_prune_forgets_meters_not_folded_since(
    db: Store, accounts: tuple[AccountRecord, ...]
) -> None:
    _, sub = accounts
    db.folds.fold([_batch(sub, "old", 1, 1, None)], NOW - timedelta(days=30))
    db.folds.fold([_batch(sub, "new", 1, 1, None)], NOW - timedelta(days=30))
    db.folds.fold([_batch(sub, "new", 1, 1, None)], NOW)  # skipped, but the meter is alive
    assert db.folds.prune(NOW - timedelta(days=7)) == 1
    assert db.folds.prune(NOW - timedelta(days=7)) == 0
    assert db.folds.fold([_batch(sub, "new", 1, 1, None)], NOW).skipped == 1
    assert db.folds.fold([_batch(sub, "old", 1, 1, None)], NOW).folded == 1  # forgotten


FOLDERS = 4


@pytest.mark.parametrize("generation", ["g1", None])
def test_concurrent_folds_of_the_same_batch_count_once(
    postgres_url: str, generation: str | None
) -> None:
    """Folders racing on one batch of a meter the store has not seen (its row created by
    all of them at once) and of a known one: each batch is added once."""
    db = Store.open(postgres_url)
    try:
        parent = db.accounts.create("p", plan="default", billing_day=1)
        sub = db.accounts.create("s", parent_id=parent.id)
        for round_ in range(3):  # a race lost once may be won the next time: several rounds
            for meter, seq in ((f"new-{round_}", 1), ("known", round_ + 1)):
                batch = _batch(sub, meter, seq, seq, generation)
                start = threading.Barrier(FOLDERS, timeout=10)

                def fold(
                    _: int, batch: FoldBatch = batch, start: threading.Barrier = start
                ) -> FoldOutcome:
                    start.wait()
                    return db.folds.fold([batch], NOW, generation)

                with ThreadPoolExecutor(FOLDERS) as pool:
                    outcomes = list(pool.map(fold, range(FOLDERS), timeout=60))
                assert sum(o.folded for o in outcomes) == 1
                assert sum(o.skipped for o in outcomes) == FOLDERS - 1
                assert all(o.folded_through == {meter: seq} for o in outcomes)
        folded = 600 if generation else 0
        assert _figures(db, "s") == (600, folded) and _figures(db, "p") == (600, folded)
    finally:
        db.close()


def test_concurrent_folds_stepping_the_generation(postgres_url: str) -> None:
    """Folders that all see a new generation at once reset folded_bytes once: the bytes
    they fold in it all stay folded."""
    db = Store.open(postgres_url)
    try:
        parent = db.accounts.create("p", plan="default", billing_day=1)
        sub = db.accounts.create("s", parent_id=parent.id)
        db.folds.fold([_batch(sub, "node-x", 1, 1, "g1")], NOW, "g1")
        start = threading.Barrier(FOLDERS, timeout=10)

        def fold(i: int) -> FoldOutcome:
            start.wait()
            return db.folds.fold([_batch(sub, f"node-{i}", 1, 1, "g2", nbytes=10)], NOW, "g2")

        with ThreadPoolExecutor(FOLDERS) as pool:
            outcomes = list(pool.map(fold, range(FOLDERS), timeout=60))
        assert sum(o.folded for o in outcomes) == FOLDERS
        assert db.folds.generation() == "g2"
        assert _figures(db, "s") == (100 + 10 * FOLDERS, 10 * FOLDERS)
    finally:
        db.close()


def test_meter_folds_migration_replaces_folded_batches(store_url: str) -> None:
    opened = Store.open(store_url, migrate=False)
    try:
        upgrade(opened.engine, "0003")
        with opened.engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO folded_batches (batch_id, folded_at) VALUES ('b1', :now)"),
                {"now": NOW},
            )
        opened.migrate()
        tables = set(sa.inspect(opened.engine).get_table_names())
        assert {"meter_folds", "usage_generation"} <= tables and "folded_batches" not in tables
        command.downgrade(alembic_config(opened.engine), "0003")
        tables = set(sa.inspect(opened.engine).get_table_names())
        assert "folded_batches" in tables and not {"meter_folds", "usage_generation"} & tables
        assert current_revision(opened.engine) == "0003"
        opened.migrate()
        sub = opened.accounts.create("s", parent_id=opened.accounts.create("p").id)
        assert opened.folds.fold([_batch(sub, "node-a", 1, 1, "g1")], NOW, "g1").folded == 1
    finally:
        opened.close()
