"""The Store: every read and write the services make, as plain methods over one engine.

Methods are synchronous (call them from a thread in async code: `anyio.to_thread` or
`loop.run_in_executor`). Each method is one transaction. Database outages surface as
`StoreUnavailable`, uniqueness clashes as `Conflict`, a plan's count reached (checked in the
writing transaction, so concurrent writes cannot overshoot it) as `LimitReached`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar, TypeVarTuple, cast

from sqlalchemy import (
    Engine,
    Select,
    bindparam,
    case,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from meshproxy.domain.accounts import AccountRecord, AccountView, UsageDelta
from meshproxy.domain.bans import BanBook, BanPolicy
from meshproxy.domain.billing import billing_period
from meshproxy.domain.folds import MAX_ID_LENGTH, FoldBatch, FoldOutcome, SeqRanges
from meshproxy.domain.limits import Limits
from meshproxy.domain.stats import DayStats, StatDelta
from meshproxy.domain.usage import bytes_per_account
from meshproxy.store import models as m
from meshproxy.store.alerts import AlertRecords
from meshproxy.store.audit import AuditRecords
from meshproxy.store.dialect import aware, chunks
from meshproxy.store.dialect import insert_for as _insert
from meshproxy.store.engine import lock_for_writing, make_engine
from meshproxy.store.errors import Conflict, LimitReached, StoreUnavailable
from meshproxy.store.migrate import upgrade
from meshproxy.store.stats import add_stats, collect, daily_stats, tree_daily_stats

ACCOUNT_FIELDS = frozenset(
    {
        "password_hash",
        "first_name",
        "last_name",
        "email",
        "active",
        "monthly_limit_gb",
        "total_limit_gb",
        "plan",
        "billing_day",
    }
)


USAGE_CHUNK = 5_000  # accounts (or meters) per statement when usage is written

GENERATION_ROW = 1  # usage_generation's one row
FOLD_ATTEMPTS = 3  # a fold that lost a race (see `_lost_race`) runs again, this many in all
# PostgreSQL's deadlock_detected and serialization_failure: the loser of a race, not an outage.
RACE_SQLSTATES = frozenset({"40P01", "40001"})

log = logging.getLogger(__name__)

T = TypeVar("T")

SUB_ACCOUNT_SORTS = ("username", "active", "monthly", "total", "created")


@dataclass(frozen=True)
class SubAccountRow:
    """One line of a parent's sub-accounts table: the account and its usage in bytes."""

    account: AccountRecord
    monthly_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class SubAccountPage:
    rows: list[SubAccountRow]
    matching: int  # sub-accounts that match the search, over all pages


@dataclass(frozen=True)
class _AccessTable:
    """Where the values that authenticate an account (IPs, hostnames) are kept: the model
    and its column holding the value, unique over all accounts."""

    model: type[m.AuthenticatedIp] | type[m.AuthenticatedHostname]
    column: InstrumentedAttribute[str]


_IPS = _AccessTable(m.AuthenticatedIp, m.AuthenticatedIp.ip)
_HOSTNAMES = _AccessTable(m.AuthenticatedHostname, m.AuthenticatedHostname.hostname)


@dataclass(frozen=True)
class ChangeRecord:
    id: int
    kind: str  # "account" | "ban"
    subject: str


def _record(row: m.Account, parent_username: str | None = None) -> AccountRecord:
    return AccountRecord(
        id=row.id,
        username=row.username,
        parent_id=row.parent_id,
        password_hash=row.password_hash,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        active=row.active,
        limits=Limits(monthly_gb=row.monthly_limit_gb, total_gb=row.total_limit_gb),
        plan=row.plan,
        billing_day=row.billing_day,
        created_at=aware(row.created_at),
        parent_username=parent_username,
        session_epoch=row.session_epoch,
    )


class Store(AuditRecords, AlertRecords):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The ban book of this process's proxies (set by the proxy node, which keeps it
        # current from the change feed), shared with the API and dashboard of the same
        # process: a ban either face decides holds on the other at once (bans below).
        self.local_bans: BanBook | None = None

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        store = cls(make_engine(url))
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        try:
            upgrade(self.engine)
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(str(error.orig or error)) from error

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self, *, locked: bool = False) -> Iterator[Session]:
        """One transaction. `locked`: it checks a count before writing, so on SQLite it
        holds the write lock from its start (see `_lock_parent` for PostgreSQL)."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    if locked:
                        lock_for_writing(session.connection())
                    yield session
                notes = session.info.get("notes")
        except IntegrityError as error:
            raise Conflict(str(error.orig)) from error
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(str(error.orig or error)) from error
        if notes:
            self.changed(notes)

    def changed(self, notes: list[tuple[str, str]]) -> None:
        """Called after a commit that wrote change rows, with their (kind, subject): a hook
        for faster notification (Redis pub/sub); the change feed stays the source of truth."""

    def ping(self) -> None:
        with self._session() as session:
            session.execute(select(1))

    # ---- accounts ---------------------------------------------------------------------

    def create_account(
        self,
        username: str,
        *,
        parent_id: int | None = None,
        now: datetime | None = None,
        proxies: Iterable[str] = (),
        max_siblings: int | None = None,
        **fields: Any,
    ) -> AccountRecord:
        """Create a parent (parent_id None) or sub-account. Raises Conflict if taken, and
        LimitReached if the parent already has `max_siblings` sub-accounts (the count and
        the insert are one transaction: creates racing at the limit cannot both pass)."""
        unknown = set(fields) - ACCOUNT_FIELDS
        if unknown:
            raise TypeError(f"unknown account fields: {sorted(unknown)}")
        if max_siblings is not None and parent_id is None:
            raise TypeError("max_siblings needs a parent_id")
        with self._session(locked=max_siblings is not None) as session:
            if max_siblings is not None and parent_id is not None:
                self._lock_parent(session, parent_id)
                if self._count_subs(session, parent_id) >= max_siblings:
                    raise LimitReached(max_siblings)
            row = m.Account(
                username=username,
                parent_id=parent_id,
                created_at=now or datetime.now(UTC),
                total_bytes=0,
                # Defaults, overridable by the caller (a sub-account created with limits).
                **{"active": True, "monthly_limit_gb": 0, "total_limit_gb": 0, **fields},
            )
            session.add(row)
            session.flush()
            for proxy in proxies:
                session.add(m.AuthorizedProxy(account_id=row.id, proxy=proxy))
            self._note(session, "account", username)
            return _record(row, self._username_of(session, parent_id))

    def _lock_parent(self, session: Session, parent_id: int) -> None:
        """Lock the parent's row until the transaction ends (PostgreSQL; SQLite holds the
        whole database's write lock already): writes that count a parent's children go one
        after another."""
        session.execute(select(m.Account.id).where(m.Account.id == parent_id).with_for_update())

    def _username_of(self, session: Session, account_id: int | None) -> str | None:
        if account_id is None:
            return None
        return session.scalar(select(m.Account.username).where(m.Account.id == account_id))

    def get_account(self, username: str) -> AccountRecord | None:
        if "\x00" in username:
            # No username holds NUL (forms refuse it); PostgreSQL would refuse the query.
            return None
        parent = aliased(m.Account)
        with self._session() as session:
            result = session.execute(
                select(m.Account, parent.username)
                .outerjoin(parent, m.Account.parent_id == parent.id)
                .where(m.Account.username == username)
            ).first()
            return None if result is None else _record(result[0], result[1])

    def update_account(self, username: str, **fields: Any) -> AccountRecord | None:
        unknown = set(fields) - ACCOUNT_FIELDS
        if unknown:
            raise TypeError(f"unknown account fields: {sorted(unknown)}")
        with self._session() as session:
            row = session.scalar(select(m.Account).where(m.Account.username == username))
            if row is None:
                return None
            for name, value in fields.items():
                setattr(row, name, value)
            if "password_hash" in fields:  # a new password ends every dashboard session
                row.session_epoch = m.Account.session_epoch + 1
            self._note(session, "account", username)
            session.flush()  # the epoch is read back (refreshed) after the increment
            return _record(row, self._username_of(session, row.parent_id))

    def bump_session_epoch(self, username: str) -> int | None:
        """End every dashboard session of the account; returns the new epoch (None: no
        such account). No change row: proxies do not look at dashboard sessions."""
        with self._session() as session:
            session.execute(
                update(m.Account)
                .where(m.Account.username == username)
                .values(session_epoch=m.Account.session_epoch + 1)
            )
            return session.scalar(
                select(m.Account.session_epoch).where(m.Account.username == username)
            )

    def delete_account(self, username: str) -> bool:
        """Delete an account with all its data (and, for a parent, its sub-accounts)."""
        with self._session() as session:
            row = session.scalar(select(m.Account).where(m.Account.username == username))
            if row is None:
                return False
            subs = session.scalars(
                select(m.Account.username).where(m.Account.parent_id == row.id)
            ).all()
            session.delete(row)
            for name in (username, *subs):
                self._note(session, "account", name)
            return True

    def list_accounts(
        self,
        *,
        parent_id: int | None = None,
        parents: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[AccountRecord]:
        """Sub-accounts of `parent_id`, or all parent accounts (`parents=True`), by username."""
        parent = aliased(m.Account)
        query = (
            select(m.Account, parent.username)
            .outerjoin(parent, m.Account.parent_id == parent.id)
            .order_by(m.Account.username)
            .offset(offset)
            .limit(limit)
        )
        if parents:
            query = query.where(m.Account.parent_id.is_(None))
        elif parent_id is not None:
            query = query.where(m.Account.parent_id == parent_id)
        with self._session() as session:
            return [_record(row, parent_name) for row, parent_name in session.execute(query)]

    def count_sub_accounts(self, parent_id: int) -> int:
        with self._session() as session:
            return self._count_subs(session, parent_id)

    def _count_subs(self, session: Session, parent_id: int) -> int:
        query = select(func.count()).select_from(m.Account).where(m.Account.parent_id == parent_id)
        return session.scalar(query) or 0

    def sub_account_page(
        self,
        parent: AccountRecord,
        now: datetime,
        *,
        search: str = "",
        sort: str = "username",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> SubAccountPage:
        """One page of a parent's sub-accounts with their usage, searched and sorted in SQL
        (the dashboard's table; fast for thousands of sub-accounts)."""
        if sort not in SUB_ACCOUNT_SORTS:
            raise ValueError(f"sort must be one of {SUB_ACCOUNT_SORTS}")
        start = billing_period(parent.billing_day or 1, now).start
        monthly = (
            select(m.UsageDaily.account_id, func.sum(m.UsageDaily.bytes).label("bytes"))
            .join(m.Account, m.Account.id == m.UsageDaily.account_id)
            .where(m.Account.parent_id == parent.id, m.UsageDaily.day >= start)
            .group_by(m.UsageDaily.account_id)
            .subquery()
        )
        monthly_bytes = func.coalesce(monthly.c.bytes, 0)
        matches = [m.Account.parent_id == parent.id]
        if "\x00" in search:  # no field holds NUL; SQLite's LIKE would stop at it
            matches.append(false())
        elif search:
            needle = search.lower()
            matches.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (
                            m.Account.username,
                            m.Account.email,
                            m.Account.first_name,
                            m.Account.last_name,
                        )
                    )
                )
            )
        key = {
            "username": m.Account.username,
            "active": m.Account.active,
            "monthly": monthly_bytes,
            "total": m.Account.total_bytes,
            "created": m.Account.created_at,
        }[sort]
        query = (
            select(m.Account, monthly_bytes)
            .outerjoin(monthly, monthly.c.account_id == m.Account.id)
            .where(*matches)
            .order_by(key.desc() if descending else key.asc(), m.Account.username)
            .offset(offset)
            .limit(limit)
        )
        with self._session() as session:
            rows = [
                SubAccountRow(_record(row, parent.username), int(month or 0), int(row.total_bytes))
                for row, month in session.execute(query)
            ]
            count = session.scalar(select(func.count()).select_from(m.Account).where(*matches))
            return SubAccountPage(rows=rows, matching=int(count or 0))

    # ---- usage ------------------------------------------------------------------------

    def record_usage(
        self, deltas: Sequence[UsageDelta], day: date, stats: Sequence[StatDelta] = ()
    ) -> None:
        """Add bytes to daily history and totals, for each account and its parent, and the
        request statistics of the same flush, in one transaction.

        A delta whose account was deleted meanwhile still counts for the parent.
        """
        totals = bytes_per_account(deltas)
        by_day: defaultdict[date, defaultdict[tuple[int, str], int]] = defaultdict(
            lambda: defaultdict(int)
        )
        collect(by_day, day, stats)
        if totals or by_day[day]:
            with self._session() as session:
                self._add_usage(session, {day: totals}, {}, by_day)

    def fold_usage(
        self,
        batches: Sequence[FoldBatch],
        now: datetime,
        current_generation: str | None = None,
    ) -> FoldOutcome:
        """Add the batches' usage like `record_usage`, each meter's flushes at most once, all
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
            lambda session: self._fold(session, batches, now, current_generation)
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

    def _retrying(self, work: Callable[[Session], T]) -> T:
        """`work` in a write-locked transaction, run again (up to FOLD_ATTEMPTS in all) when
        it loses a race to another transaction."""
        attempt = 1
        while True:
            try:
                with self._session(locked=True) as session:
                    return work(session)
            except (Conflict, StoreUnavailable) as error:
                if attempt >= FOLD_ATTEMPTS or not _lost_race(error):
                    raise
                attempt += 1

    def _fold(
        self,
        session: Session,
        batches: Sequence[FoldBatch],
        now: datetime,
        current_generation: str | None,
    ) -> tuple[FoldOutcome, list[FoldBatch]]:
        generation = self._step_generation(session, current_generation)
        ranges = self._lock_meters(session, sorted({b.meter_id for b in batches}), now)
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
        self._add_usage(session, usage, folded, stats)
        for username in self._usernames(session, not_folded):
            self._note(session, "account", username)
        if ranges:
            session.connection().execute(
                update(m.MeterFolds)
                .where(m.MeterFolds.meter_id == bindparam("meter"))
                .values(folded=bindparam("ranges"), updated_at=now),
                [{"meter": meter, "ranges": str(held)} for meter, held in ranges.items()],
            )
        outcome.folded_through = {meter: held.folded_through() for meter, held in ranges.items()}
        return outcome, overlapping

    def _step_generation(self, session: Session, current: str | None) -> str | None:
        """The stored generation, after stepping to `current` if that is newer. Its row is
        locked (PostgreSQL): shared by folds, so they run side by side; exclusively by one
        that steps, which waits for the folds adding to folded_bytes in the old generation
        and holds back new ones until it commits."""
        row = select(m.UsageGeneration.generation).where(m.UsageGeneration.id == GENERATION_ROW)
        # Generations only grow: a step that looks needed unlocked is checked again locked.
        peeked = session.scalar(row)
        stepping = current is not None and (peeked is None or current > peeked)
        if stepping:
            session.execute(
                _insert(session, m.UsageGeneration)
                .values(id=GENERATION_ROW, generation=None)
                .on_conflict_do_nothing()
            )
        stored = session.scalar(row.with_for_update(read=not stepping))
        if current is None or not stepping or (stored is not None and current <= stored):
            return stored
        session.execute(update(m.Account).where(m.Account.folded_bytes != 0).values(folded_bytes=0))
        session.execute(
            update(m.UsageGeneration)
            .where(m.UsageGeneration.id == GENERATION_ROW)
            .values(generation=current)
        )
        return current

    def _lock_meters(
        self, session: Session, meters: list[str], now: datetime
    ) -> dict[str, SeqRanges]:
        """Each meter's folded flushes, its row created if missing and locked until the
        transaction ends (PostgreSQL; SQLite's write lock is held already). Creating with
        ON CONFLICT DO NOTHING waits for a concurrent creator instead of failing; rows are
        locked in meter order, so folds of overlapping meters cannot deadlock."""
        ranges: dict[str, SeqRanges] = {}
        for chunk in chunks(meters, USAGE_CHUNK):
            session.execute(
                _insert(session, m.MeterFolds)
                .values([{"meter_id": meter, "folded": "", "updated_at": now} for meter in chunk])
                .on_conflict_do_nothing()
            )
            rows = session.execute(
                select(m.MeterFolds.meter_id, m.MeterFolds.folded)
                .where(m.MeterFolds.meter_id.in_(chunk))
                .order_by(m.MeterFolds.meter_id)
                .with_for_update()
            )
            ranges.update((meter, SeqRanges.parse(text)) for meter, text in rows)
        return ranges

    def prune_meter_folds(self, older_than: datetime) -> int:
        """Forget meters whose folds were last updated before `older_than`; how many."""
        with self._session() as session:
            done = session.execute(delete(m.MeterFolds).where(m.MeterFolds.updated_at < older_than))
            return int(done.rowcount)  # type: ignore[attr-defined]

    def usage_generation(self) -> str | None:
        """The shared-counter generation accounts' folded_bytes count (None: none yet)."""
        with self._session() as session:
            return self._stored_generation(session)

    def _stored_generation(self, session: Session) -> str | None:
        return session.scalar(
            select(m.UsageGeneration.generation).where(m.UsageGeneration.id == GENERATION_ROW)
        )

    def _add_usage(
        self,
        session: Session,
        usage: Mapping[date, Mapping[int, int]],
        folded: Mapping[int, int],
        stats: Mapping[date, Mapping[tuple[int, str], int]] | None = None,
    ) -> None:
        """Add usage[day][account id] bytes to the daily rows and the accounts' total_bytes,
        and folded[account id] (a part of those) to their folded_bytes; deleted accounts
        are left out. All in the caller's transaction, in chunks (PostgreSQL takes at most
        65,535 parameters a statement), the totals in one executemany (pipelined by
        psycopg). Rows are written in (day, account) order, then accounts in id order: the
        same order in every usage write, so concurrent ones cannot deadlock. The request
        statistics `stats` (store/stats.py) are added after the accounts."""
        totals: dict[int, int] = defaultdict(int)
        for per_account in usage.values():
            for account_id, nbytes in per_account.items():
                totals[account_id] += nbytes
        stats = stats or {}
        counted = {account_id for per_day in stats.values() for account_id, _ in per_day}
        existing = self._existing_accounts(session, set(totals) | counted)
        moved = sorted(existing & set(totals))
        for day in sorted(usage):
            rows = [
                {"account_id": account_id, "day": day, "bytes": nbytes}
                for account_id, nbytes in sorted(usage[day].items())
                if account_id in existing
            ]
            for chunk in chunks(rows, USAGE_CHUNK):
                session.execute(_upsert_adding(session, chunk))
        if moved:
            session.connection().execute(
                update(m.Account)
                .where(m.Account.id == bindparam("account"))
                .values(
                    total_bytes=m.Account.total_bytes + bindparam("n"),
                    folded_bytes=m.Account.folded_bytes + bindparam("folded"),
                ),
                [
                    {
                        "account": account_id,
                        "n": totals[account_id],
                        "folded": folded.get(account_id, 0),
                    }
                    for account_id in moved
                ],
            )
        if stats:
            add_stats(session, stats, existing)

    def _existing_accounts(self, session: Session, ids: Iterable[int]) -> set[int]:
        existing: set[int] = set()
        for chunk in chunks(sorted(ids), USAGE_CHUNK):
            existing.update(session.scalars(select(m.Account.id).where(m.Account.id.in_(chunk))))
        return existing

    def _usernames(self, session: Session, ids: Iterable[int]) -> list[str]:
        """The usernames of the accounts (deleted ones left out), by id."""
        names: list[str] = []
        for chunk in chunks(sorted(ids), USAGE_CHUNK):
            names.extend(
                session.scalars(
                    select(m.Account.username).where(m.Account.id.in_(chunk)).order_by(m.Account.id)
                )
            )
        return names

    def usage(self, account: AccountRecord, now: datetime) -> tuple[int, int]:
        """(bytes in the current billing period, bytes of all time) for one account."""
        with self._session() as session:
            start = self._period_start(session, account, now)
            monthly = session.scalar(
                select(func.coalesce(func.sum(m.UsageDaily.bytes), 0)).where(
                    m.UsageDaily.account_id == account.id, m.UsageDaily.day >= start
                )
            )
            total = session.scalar(select(m.Account.total_bytes).where(m.Account.id == account.id))
            return int(monthly or 0), int(total or 0)

    def usage_many(
        self, accounts: Sequence[AccountRecord], now: datetime
    ) -> dict[int, tuple[int, int]]:
        """`usage` for many accounts at once (all sharing one parent's period, or parents)."""
        result: dict[int, tuple[int, int]] = {}
        with self._session() as session:
            starts = {a.id: self._period_start(session, a, now) for a in accounts}
            totals = dict(
                session.execute(
                    select(m.Account.id, m.Account.total_bytes).where(m.Account.id.in_(starts))
                ).all()
            )
            for start in set(starts.values()):
                ids = [i for i, s in starts.items() if s == start]
                monthly = dict(
                    session.execute(
                        select(m.UsageDaily.account_id, func.sum(m.UsageDaily.bytes))
                        .where(m.UsageDaily.account_id.in_(ids), m.UsageDaily.day >= start)
                        .group_by(m.UsageDaily.account_id)
                    ).all()
                )
                for account_id in ids:
                    result[account_id] = (
                        int(monthly.get(account_id) or 0),
                        int(totals.get(account_id) or 0),
                    )
        return result

    def daily_usage(self, account_id: int, start: date, end: date) -> list[tuple[date, int]]:
        """Daily history, days in [start, end)."""
        with self._session() as session:
            rows = session.execute(
                select(m.UsageDaily.day, m.UsageDaily.bytes)
                .where(
                    m.UsageDaily.account_id == account_id,
                    m.UsageDaily.day >= start,
                    m.UsageDaily.day < end,
                )
                .order_by(m.UsageDaily.day)
            )
            return [(day, int(nbytes)) for day, nbytes in rows]

    def daily_stats(self, account_id: int, start: date, end: date) -> list[DayStats]:
        """The account's request statistics (domain/stats.py) of each day in [start, end)."""
        with self._session() as session:
            return daily_stats(session, account_id, start, end)

    def tree_daily_stats(
        self, parent_id: int, start: date, end: date
    ) -> list[tuple[str, DayStats]]:
        """(username, figures) of a parent and its sub-accounts, days in [start, end) with
        requests, by username then day."""
        with self._session() as session:
            return tree_daily_stats(session, parent_id, start, end)

    def sub_account_daily_usage(
        self, parent_id: int, start: date, end: date, account_ids: Iterable[int] | None = None
    ) -> list[tuple[int, str, date, int]]:
        """(account id, username, day, bytes) of a parent's sub-accounts (or of those of
        `account_ids`), days in [start, end) with usage, by username then day."""
        query = _sub_account_days(
            select(m.Account.id, m.Account.username, m.UsageDaily.day, m.UsageDaily.bytes),
            parent_id,
            start,
            end,
        ).order_by(m.Account.username, m.UsageDaily.day)
        if account_ids is not None:
            query = query.where(m.Account.id.in_(list(account_ids)))
        with self._session() as session:
            return [(i, name, day, int(nbytes)) for i, name, day, nbytes in session.execute(query)]

    def top_sub_accounts(
        self, parent_id: int, start: date, end: date, limit: int
    ) -> list[tuple[int, str, int]]:
        """(account id, username, bytes) of the sub-accounts that used most in [start, end)."""
        used = func.sum(m.UsageDaily.bytes)
        query = (
            _sub_account_days(select(m.Account.id, m.Account.username, used), parent_id, start, end)
            .group_by(m.Account.id, m.Account.username)
            .having(used > 0)
            .order_by(used.desc(), m.Account.username)
            .limit(limit)
        )
        with self._session() as session:
            return [(i, name, int(nbytes)) for i, name, nbytes in session.execute(query)]

    def _period_start(self, session: Session, account: AccountRecord, now: datetime) -> date:
        billing_day = account.billing_day
        if account.parent_id is not None:
            billing_day = session.scalar(
                select(m.Account.billing_day).where(m.Account.id == account.parent_id)
            )
        return billing_period(billing_day or 1, now).start

    # ---- authenticated IPs, hostnames, authorized proxies ---------------------------------

    def add_ip(self, account: AccountRecord, ip: str) -> None:
        """Raises Conflict when any account already holds the IP."""
        self._add_access(_IPS, account, ip)

    def delete_ip(self, account: AccountRecord, ip: str) -> bool:
        return self._delete_access(_IPS, account, ip)

    def list_ips(self, account: AccountRecord) -> list[str]:
        return self._list_access(_IPS, account)

    def ip_holders(self, ips: Collection[str]) -> dict[str, int]:
        """The account id holding each of `ips` as an authenticated IP (absent: nobody)."""
        if not ips:
            return {}
        with self._session() as session:
            return {
                ip: account_id
                for ip, account_id in session.execute(
                    select(m.AuthenticatedIp.ip, m.AuthenticatedIp.account_id).where(
                        m.AuthenticatedIp.ip.in_(list(ips))
                    )
                )
            }

    def add_hostname(self, account: AccountRecord, hostname: str) -> None:
        """Raises Conflict when any account already holds the hostname."""
        self._add_access(_HOSTNAMES, account, hostname)

    def delete_hostname(self, account: AccountRecord, hostname: str) -> bool:
        return self._delete_access(_HOSTNAMES, account, hostname)

    def list_hostnames(self, account: AccountRecord) -> list[str]:
        return self._list_access(_HOSTNAMES, account)

    def _add_access(self, table: _AccessTable, account: AccountRecord, value: str) -> None:
        """Raises Conflict when any account already holds the value."""
        with self._session() as session:
            session.add(table.model(account_id=account.id, **{table.column.key: value}))
            session.flush()
            self._note(session, "account", account.username)

    def _delete_access(self, table: _AccessTable, account: AccountRecord, value: str) -> bool:
        with self._session() as session:
            done = session.execute(
                delete(table.model).where(
                    table.model.account_id == account.id, table.column == value
                )
            )
            self._note(session, "account", account.username)
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def _list_access(self, table: _AccessTable, account: AccountRecord) -> list[str]:
        """In the order they were added."""
        with self._session() as session:
            return list(
                session.scalars(
                    select(table.column)
                    .where(table.model.account_id == account.id)
                    .order_by(table.model.id)
                )
            )

    def authorized_proxies(self, account: AccountRecord) -> list[str]:
        with self._session() as session:
            return list(
                session.scalars(
                    select(m.AuthorizedProxy.proxy)
                    .where(m.AuthorizedProxy.account_id == account.id)
                    .order_by(m.AuthorizedProxy.proxy)
                )
            )

    def authorize_proxy(
        self,
        account: AccountRecord,
        proxy: str,
        *,
        max_proxies: int | None = None,
        counting: Collection[str] | None = None,
    ) -> bool:
        """True if added, False if it was already authorized. With `max_proxies`, raises
        LimitReached when the account already has that many of the proxies in `counting`
        (all when None), checked in the transaction that adds it."""
        with self._session(locked=max_proxies is not None) as session:
            if max_proxies is not None:
                self._lock_parent(session, account.id)
            exists = session.get(m.AuthorizedProxy, (account.id, proxy))
            if exists is not None:
                return False
            if max_proxies is not None:
                query = (
                    select(func.count())
                    .select_from(m.AuthorizedProxy)
                    .where(m.AuthorizedProxy.account_id == account.id)
                )
                if counting is not None:
                    query = query.where(m.AuthorizedProxy.proxy.in_(list(counting)))
                if (session.scalar(query) or 0) >= max_proxies:
                    raise LimitReached(max_proxies)
            session.add(m.AuthorizedProxy(account_id=account.id, proxy=proxy))
            self._note_tree(session, account)
            return True

    def deauthorize_proxy(self, account: AccountRecord, proxy: str) -> bool:
        with self._session() as session:
            done = session.execute(
                delete(m.AuthorizedProxy).where(
                    m.AuthorizedProxy.account_id == account.id, m.AuthorizedProxy.proxy == proxy
                )
            )
            self._note_tree(session, account)
            return bool(done.rowcount)  # type: ignore[attr-defined]

    # ---- what a proxy node loads ---------------------------------------------------------

    def account_views(
        self,
        now: datetime,
        usernames: Iterable[str] | None = None,
        generation: str | None = None,
    ) -> list[AccountView]:
        """Full views of all accounts (or of `usernames`, with their parents' for context).
        Given the shared-counter `generation` a node counts in, folded_bytes are 0 unless
        the store's folded_bytes count that generation (read in the same transaction).

        A full load filters nothing by id (no IN lists: PostgreSQL takes at most 65,535
        parameters, and scanning whole tables is what a full load needs anyway)."""
        wanted = None if usernames is None else set(usernames)
        with self._session() as session:
            query = select(m.Account)
            if wanted is not None:
                query = query.where(m.Account.username.in_(wanted))
            rows = list(session.scalars(query))
            if not rows:
                return []
            fresh = generation is None or generation == self._stored_generation(session)
            ids = {row.id for row in rows}
            parent_ids = {row.parent_id for row in rows if row.parent_id is not None}

            def among(column: Any, values: set[int]) -> Any:
                return true() if wanted is None else column.in_(values)

            names: dict[int, str] = {row.id: row.username for row in rows}
            billing: dict[int, int | None] = {row.id: row.billing_day for row in rows}
            missing = parent_ids - ids  # parents of reloaded sub-accounts
            if missing:
                for account_id, username, billing_day in session.execute(
                    select(m.Account.id, m.Account.username, m.Account.billing_day).where(
                        m.Account.id.in_(missing)
                    )
                ):
                    names[account_id] = username
                    billing[account_id] = billing_day
            ips: dict[int, list[str]] = defaultdict(list)
            for account_id, ip in session.execute(
                select(m.AuthenticatedIp.account_id, m.AuthenticatedIp.ip).where(
                    among(m.AuthenticatedIp.account_id, ids)
                )
            ):
                ips[account_id].append(ip)
            hostnames: dict[int, list[str]] = defaultdict(list)
            hostname_ids: dict[int, list[int]] = defaultdict(list)
            for row_id, account_id, hostname in session.execute(
                select(
                    m.AuthenticatedHostname.id,
                    m.AuthenticatedHostname.account_id,
                    m.AuthenticatedHostname.hostname,
                )
                .where(among(m.AuthenticatedHostname.account_id, ids))
                .order_by(m.AuthenticatedHostname.id)
            ):
                hostnames[account_id].append(hostname)
                hostname_ids[account_id].append(row_id)
            proxies: dict[int, list[str]] = defaultdict(list)
            for account_id, proxy in session.execute(
                select(m.AuthorizedProxy.account_id, m.AuthorizedProxy.proxy).where(
                    among(m.AuthorizedProxy.account_id, parent_ids | ids)
                )
            ):
                proxies[account_id].append(proxy)
            starts: dict[int, date] = {}
            for row in rows:
                owner = row.parent_id if row.parent_id is not None else row.id
                starts[row.id] = billing_period(billing.get(owner) or 1, now).start
            monthly: dict[int, int] = {}
            for start in set(starts.values()):
                group = {i for i, s in starts.items() if s == start}
                sums = session.execute(
                    select(m.UsageDaily.account_id, func.sum(m.UsageDaily.bytes))
                    .where(among(m.UsageDaily.account_id, group), m.UsageDaily.day >= start)
                    .group_by(m.UsageDaily.account_id)
                )
                monthly.update((i, int(n or 0)) for i, n in sums if i in group)
            return [
                AccountView(
                    account=_record(row, names.get(row.parent_id) if row.parent_id else None),
                    ips=tuple(ips[row.id]),
                    hostnames=tuple(hostnames[row.id]),
                    hostname_ids=tuple(hostname_ids[row.id]),
                    proxies=tuple(proxies[row.parent_id if row.parent_id else row.id]),
                    monthly_bytes=monthly.get(row.id, 0),
                    total_bytes=int(row.total_bytes),
                    folded_bytes=int(row.folded_bytes) if fresh else 0,
                )
                for row in rows
            ]

    # ---- bans ---------------------------------------------------------------------------

    def record_auth_failure(self, ip: str, at: float, policy: BanPolicy) -> float | None:
        """Count a failure from `ip` that happened at `at` (a proxy reports its failures a
        moment later); returns the ban's end if this one starts a ban. A failure from
        before the address's last success does not count: failures count in the order
        they happened, whichever face saw them."""
        with self._session() as session:
            reset = session.get(m.AuthReset, ip)
            if reset is not None and at < reset.at:
                return None  # from before a success, reported late
            session.add(m.AuthFailure(ip=ip, at=at))
            session.execute(
                delete(m.AuthFailure).where(
                    m.AuthFailure.ip == ip, m.AuthFailure.at <= at - policy.window_seconds
                )
            )
            count = (
                session.scalar(
                    select(func.count()).select_from(m.AuthFailure).where(m.AuthFailure.ip == ip)
                )
                or 0
            )
            if count < policy.max_failures:
                return None
            session.execute(delete(m.AuthFailure).where(m.AuthFailure.ip == ip))
            self._ban(session, ip, at + policy.ban_seconds)
            # The ban's end as stored: a ban in force that ends later is kept (BanBook's rule).
            until = float(session.scalar(select(m.Ban.until).where(m.Ban.ip == ip)) or 0.0)
        self._adopt_ban(ip, until)
        return until

    def record_ban(self, ip: str, until: float, decided_at: float | None = None) -> bool:
        """A ban decided elsewhere (a proxy's own count, the shared ban in Redis), kept here
        too: every face reads it, it outlives a Redis that restarts empty, and its change
        row tells nodes that missed it. One `decided_at` before the address's last success
        or unban (a proxy's report arriving late) is not written: False."""
        with self._session() as session:
            if decided_at is not None:
                reset = session.get(m.AuthReset, ip)
                if reset is not None and decided_at < reset.at:
                    return False
            self._ban(session, ip, until)
        self._adopt_ban(ip, until)
        return True

    def _ban(self, session: Session, ip: str, until: float) -> None:
        session.execute(_upsert_latest(session, m.Ban.ip, m.Ban.until, ip, until))
        self._note(session, "ban", ip)

    def _adopt_ban(self, ip: str, until: float) -> None:
        if self.local_bans is not None:
            self.local_bans.ban(ip, until)

    def record_auth_success(self, ip: str, at: float | None = None) -> None:
        """A success from `ip` at `at`: the failures until then stop counting, also those
        reported after this call (without `at`: every failure recorded so far)."""
        with self._session() as session:
            wiped = delete(m.AuthFailure).where(m.AuthFailure.ip == ip)
            if at is not None:
                self._reset(session, ip, at)
                wiped = wiped.where(m.AuthFailure.at <= at)
            session.execute(wiped)

    def _reset(self, session: Session, ip: str, at: float) -> None:
        """Failures (and bans decided) before `at` no longer count, however late reported."""
        session.execute(_upsert_latest(session, m.AuthReset.ip, m.AuthReset.at, ip, at))

    def ban_until(self, ip: str, now: float) -> float | None:
        local = self.local_bans
        if local is not None:
            until = local.banned_until(ip, now)
            if until is not None:
                return until
        with self._session() as session:
            until = session.scalar(select(m.Ban.until).where(m.Ban.ip == ip, m.Ban.until > now))
            return None if until is None else float(until)

    def active_bans(self, now: float) -> dict[str, float]:
        with self._session() as session:
            return {
                ip: float(until)
                for ip, until in session.execute(
                    select(m.Ban.ip, m.Ban.until).where(m.Ban.until > now)
                )
            }

    def unban(self, ip: str) -> bool:
        """Lift the ban and the count; failures and bans from before now, reported later by a
        proxy, do not bring it back."""
        now = time.time()
        local = self.local_bans
        lifted = local is not None and local.banned_until(ip, now) is not None
        if local is not None:
            local.unban(ip)
        with self._session() as session:
            self._reset(session, ip, now)
            done = session.execute(delete(m.Ban).where(m.Ban.ip == ip))
            session.execute(delete(m.AuthFailure).where(m.AuthFailure.ip == ip))
            self._note(session, "ban", ip)
            return lifted or bool(done.rowcount)  # type: ignore[attr-defined]

    def auth_failure_counts(self, since: float) -> dict[str, int]:
        """Authentication failures per client IP recorded at `since` or later (`admin bans`)."""
        with self._session() as session:
            return {
                ip: int(count)
                for ip, count in session.execute(
                    select(m.AuthFailure.ip, func.count())
                    .where(m.AuthFailure.at >= since)
                    .group_by(m.AuthFailure.ip)
                )
            }

    # ---- change feed ---------------------------------------------------------------------

    def _note(self, session: Session, kind: str, subject: str) -> None:
        session.add(m.Change(kind=kind, subject=subject, at=datetime.now(UTC)))
        session.info.setdefault("notes", []).append((kind, subject))

    def _note_tree(self, session: Session, account: AccountRecord) -> None:
        """A change to a parent that its sub-accounts inherit (authorized proxies)."""
        self._note(session, "account", account.username)
        for name in session.scalars(
            select(m.Account.username).where(m.Account.parent_id == account.id)
        ):
            self._note(session, "account", name)

    def latest_change_id(self) -> int:
        with self._session() as session:
            return int(session.scalar(select(func.max(m.Change.id))) or 0)

    def changes_since(self, change_id: int, limit: int = 10_000) -> list[ChangeRecord]:
        with self._session() as session:
            return [
                ChangeRecord(id=row.id, kind=row.kind, subject=row.subject)
                for row in session.scalars(
                    select(m.Change)
                    .where(m.Change.id > change_id)
                    .order_by(m.Change.id)
                    .limit(limit)
                )
            ]

    def prune_changes(self, older_than: datetime) -> None:
        with self._session() as session:
            session.execute(delete(m.Change).where(m.Change.at < older_than))


Columns = TypeVarTuple("Columns")


def _sub_account_days(
    query: Select[*Columns], parent_id: int, start: date, end: date
) -> Select[*Columns]:
    """`query` over the daily usage rows of a parent's sub-accounts, days in [start, end)."""
    return query.join(m.UsageDaily, m.UsageDaily.account_id == m.Account.id).where(
        m.Account.parent_id == parent_id, m.UsageDaily.day >= start, m.UsageDaily.day < end
    )


def _lost_race(error: Conflict | StoreUnavailable) -> bool:
    """The error of a transaction that lost a race, which a new attempt can win: a unique or
    foreign key clash (a row created, or an account deleted, by another transaction
    meanwhile), a deadlock or a serialization failure. Not an outage."""
    if isinstance(error, Conflict):
        return True
    cause = error.__cause__
    orig = getattr(cause, "orig", None)
    return getattr(orig, "sqlstate", None) in RACE_SQLSTATES


def _upsert_latest(
    session: Session,
    key: InstrumentedAttribute[str],
    column: InstrumentedAttribute[float],
    key_value: str,
    value: float,
) -> Any:
    """INSERT a row, or raise its `column` to `value` where the row exists (never lower
    it): one statement, so concurrent writers of the same key (two requests from one
    address) cannot both insert."""
    model = cast("type[m.Base]", key.class_)  # a column attribute's mapped class
    statement = _insert(session, model).values({key.key: key_value, column.key: value})
    excluded = getattr(statement.excluded, column.key)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={column.key: case((excluded > column, excluded), else_=column)}
    )


def _upsert_adding(session: Session, rows: Sequence[dict[str, Any]]) -> Any:
    """INSERT the daily rows, adding to `bytes` where the (account, day) row exists."""
    statement = _insert(session, m.UsageDaily).values(list(rows))
    return statement.on_conflict_do_update(
        index_elements=[m.UsageDaily.account_id, m.UsageDaily.day],
        set_={"bytes": m.UsageDaily.bytes + statement.excluded.bytes},
    )
