"""Folds: the shared (Redis) counters' batches moved into the usage, each meter's flushes at
most once (`meter_folds`), and the generation of those counters (`usage_generation`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import (
    bindparam,
    delete,
    select,
    update,
)

from meshproxy.domain.folds import MAX_ID_LENGTH, FoldBatch, FoldOutcome, SeqRanges
from meshproxy.domain.usage import bytes_per_account
from meshproxy.store import tables as t
from meshproxy.store.changes import note
from meshproxy.store.dialect import chunks
from meshproxy.store.errors import Conflict, StoreUnavailable
from meshproxy.store.stats import collect
from meshproxy.store.transaction import Database, Transaction
from meshproxy.store.usage import USAGE_CHUNK, add_usage, usernames_of

GENERATION_ROW = 1  # usage_generation's one row


FOLD_ATTEMPTS = 3  # a fold that lost a race (see `_lost_race`) runs again, this many in all


RACE_SQLSTATES = frozenset({"40P01", "40001"})


log = logging.getLogger(__name__)


T = TypeVar("T")


def _lost_race(error: Conflict | StoreUnavailable) -> bool:
    """The error of a transaction that lost a race, which a new attempt can win: a unique or
    foreign key clash (a row created, or an account deleted, by another transaction
    meanwhile), a deadlock or a serialization failure. Not an outage."""
    if isinstance(error, Conflict):
        return True
    cause = error.__cause__
    orig = getattr(cause, "orig", None)
    return getattr(orig, "sqlstate", None) in RACE_SQLSTATES


def stored_generation(tx: Transaction) -> str | None:
    generation: str | None = tx.scalar(
        select(t.usage_generation.c.generation).where(t.usage_generation.c.id == GENERATION_ROW)
    )
    return generation


class Folds:
    """What meter/fold.py and the Redis meter write (meter/sink.py's `FoldSink`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def fold(
        self,
        batches: Sequence[FoldBatch],
        now: datetime,
        current_generation: str | None = None,
    ) -> FoldOutcome:
        """Add the batches' usage like `Usage.record`, each meter's flushes at most once, all
        in one transaction (a crash folds all or nothing).

        A `current_generation` newer than the stored one (or the first) sets every account's
        folded_bytes back to 0 and is stored. A batch whose flushes the store holds already
        is skipped; one that holds some of them (only after a node's journal overflowed) is
        added anyway and logged as an error. Only batches counted in the stored generation
        raise folded_bytes; for the others, change rows make proxy nodes reload the
        accounts' usage. Concurrent folds of the same batch (any number of folders, threads
        or processes) add it once."""
        if current_generation is not None and len(current_generation) > MAX_ID_LENGTH:
            raise ValueError(f"a generation has at most {MAX_ID_LENGTH} characters")
        outcome, overlapping = self._retrying(
            lambda tx: self._fold(tx, batches, now, current_generation)
        )
        for batch in overlapping:
            log.error(
                "meter %s: flushes %d-%d were partly folded before; added again (%d bytes)",
                batch.meter_id,
                batch.first_seq,
                batch.last_seq,
                batch.nbytes,
            )
        return outcome

    def _retrying(self, work: Callable[[Transaction], T]) -> T:
        """`work` in a write-locked transaction, run again (up to FOLD_ATTEMPTS in all) when
        it loses a race to another transaction."""
        attempt = 1
        while True:
            try:
                with self._db.transaction(locked=True) as tx:
                    return work(tx)
            except (Conflict, StoreUnavailable) as error:
                if attempt >= FOLD_ATTEMPTS or not _lost_race(error):
                    raise
                attempt += 1

    def _fold(
        self,
        tx: Transaction,
        batches: Sequence[FoldBatch],
        now: datetime,
        current_generation: str | None,
    ) -> tuple[FoldOutcome, list[FoldBatch]]:
        generation = self._step_generation(tx, current_generation)
        ranges = self._lock_meters(tx, sorted({b.meter_id for b in batches}), now)
        outcome = FoldOutcome()
        overlapping: list[FoldBatch] = []
        usage: dict[date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        stats: defaultdict[date, defaultdict[tuple[int, str], int]] = defaultdict(
            lambda: defaultdict(int)
        )
        folded: dict[int, int] = defaultdict(int)
        not_folded: set[int] = set()  # accounts whose nodes must reload their usage
        for batch in batches:
            held = ranges[batch.meter_id]
            if held.covers(batch.first_seq, batch.last_seq):
                outcome.skipped += 1
                continue
            if held.overlaps(batch.first_seq, batch.last_seq):
                outcome.overlapping += 1
                overlapping.append(batch)
            ranges[batch.meter_id] = held.add(batch.first_seq, batch.last_seq)
            outcome.folded += 1
            outcome.nbytes += batch.nbytes
            totals = bytes_per_account(batch.deltas)
            collect(stats, batch.day, batch.stats)
            day = usage[batch.day]
            counted_in_shared = batch.generation is not None and batch.generation == generation
            for account_id, nbytes in totals.items():
                day[account_id] += nbytes
                if counted_in_shared:
                    folded[account_id] += nbytes
            if not counted_in_shared:
                not_folded.update(totals)
        add_usage(tx, usage, folded, stats)
        for username in usernames_of(tx, not_folded):
            note(tx, "account", username)
        if ranges:
            tx.execute(
                update(t.meter_folds)
                .where(t.meter_folds.c.meter_id == bindparam("meter"))
                .values(folded=bindparam("ranges"), updated_at=now),
                [{"meter": meter, "ranges": str(held)} for meter, held in ranges.items()],
            )
        outcome.folded_through = {meter: held.folded_through() for meter, held in ranges.items()}
        return outcome, overlapping

    def _step_generation(self, tx: Transaction, current: str | None) -> str | None:
        """The stored generation, after stepping to `current` if that is newer. Its row is
        locked (PostgreSQL): shared by folds, so they run side by side; exclusively by one
        that steps, which waits for the folds adding to folded_bytes in the old generation
        and holds back new ones until it commits."""
        row = select(t.usage_generation.c.generation).where(
            t.usage_generation.c.id == GENERATION_ROW
        )
        # Generations only grow: a step that looks needed unlocked is checked again locked.
        peeked = tx.scalar(row)
        stepping = current is not None and (peeked is None or current > peeked)
        if stepping:
            tx.execute(
                tx.insert(t.usage_generation)
                .values(id=GENERATION_ROW, generation=None)
                .on_conflict_do_nothing()
            )
        stored: str | None = tx.scalar(row.with_for_update(read=not stepping))
        if current is None or not stepping or (stored is not None and current <= stored):
            return stored
        tx.execute(update(t.accounts).where(t.accounts.c.folded_bytes != 0).values(folded_bytes=0))
        tx.execute(
            update(t.usage_generation)
            .where(t.usage_generation.c.id == GENERATION_ROW)
            .values(generation=current)
        )
        return current

    def _lock_meters(
        self, tx: Transaction, meters: list[str], now: datetime
    ) -> dict[str, SeqRanges]:
        """Each meter's folded flushes, its row created if missing and locked until the
        transaction ends (PostgreSQL; SQLite's write lock is held already). Creating with
        ON CONFLICT DO NOTHING waits for a concurrent creator instead of failing; rows are
        locked in meter order, so folds of overlapping meters cannot deadlock."""
        ranges: dict[str, SeqRanges] = {}
        for chunk in chunks(meters, USAGE_CHUNK):
            tx.execute(
                tx.insert(t.meter_folds)
                .values([{"meter_id": meter, "folded": "", "updated_at": now} for meter in chunk])
                .on_conflict_do_nothing()
            )
            rows = tx.execute(
                select(t.meter_folds.c.meter_id, t.meter_folds.c.folded)
                .where(t.meter_folds.c.meter_id.in_(chunk))
                .order_by(t.meter_folds.c.meter_id)
                .with_for_update()
            )
            ranges.update((meter, SeqRanges.parse(text)) for meter, text in rows)
        return ranges

    def prune(self, older_than: datetime) -> int:
        """Forget meters whose folds were last updated before `older_than`; how many."""
        with self._db.transaction() as tx:
            done = tx.execute(delete(t.meter_folds).where(t.meter_folds.c.updated_at < older_than))
            return int(done.rowcount)

    def generation(self) -> str | None:
        """The shared-counter generation accounts' folded_bytes count (None: none yet)."""
        with self._db.transaction() as tx:
            return stored_generation(tx)
