"""Usage: bytes per account and day (`usage_daily`) and in all (`accounts.total_bytes`),
written by the meters' flushes and the folds, read for limits, the dashboard and reports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    Select,
    bindparam,
    func,
    select,
    update,
)

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.billing import billing_period
from meshproxy.domain.stats import StatDelta
from meshproxy.domain.usage import bytes_per_account
from meshproxy.store import tables as t
from meshproxy.store.dialect import chunks
from meshproxy.store.stats import add_stats, collect
from meshproxy.store.transaction import Database, Transaction

USAGE_CHUNK = 5_000  # accounts (or meters) per statement when usage is written


Columns = TypeVarTuple("Columns")


def _sub_account_days(
    query: Select[*Columns], parent_id: int, start: date, end: date
) -> Select[*Columns]:
    """`query` over the daily usage rows of a parent's sub-accounts, days in [start, end)."""
    return query.join(t.usage_daily, t.usage_daily.c.account_id == t.accounts.c.id).where(
        t.accounts.c.parent_id == parent_id, t.usage_daily.c.day >= start, t.usage_daily.c.day < end
    )


def _upsert_adding(tx: Transaction, rows: Sequence[dict[str, Any]]) -> Any:
    """INSERT the daily rows, adding to `bytes` where the (account, day) row exists."""
    statement = tx.insert(t.usage_daily).values(list(rows))
    return statement.on_conflict_do_update(
        index_elements=[t.usage_daily.c.account_id, t.usage_daily.c.day],
        set_={"bytes": t.usage_daily.c.bytes + statement.excluded.bytes},
    )


def add_usage(
    tx: Transaction,
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
    existing = existing_accounts(tx, set(totals) | counted)
    moved = sorted(existing & set(totals))
    for day in sorted(usage):
        rows = [
            {"account_id": account_id, "day": day, "bytes": nbytes}
            for account_id, nbytes in sorted(usage[day].items())
            if account_id in existing
        ]
        for chunk in chunks(rows, USAGE_CHUNK):
            tx.execute(_upsert_adding(tx, chunk))
    if moved:
        tx.execute(
            update(t.accounts)
            .where(t.accounts.c.id == bindparam("account"))
            .values(
                total_bytes=t.accounts.c.total_bytes + bindparam("n"),
                folded_bytes=t.accounts.c.folded_bytes + bindparam("folded"),
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
        add_stats(tx, stats, existing)


def existing_accounts(tx: Transaction, ids: Iterable[int]) -> set[int]:
    existing: set[int] = set()
    for chunk in chunks(sorted(ids), USAGE_CHUNK):
        existing.update(tx.scalars(select(t.accounts.c.id).where(t.accounts.c.id.in_(chunk))))
    return existing


def usernames_of(tx: Transaction, ids: Iterable[int]) -> list[str]:
    """The usernames of the accounts (deleted ones left out), by id."""
    names: list[str] = []
    for chunk in chunks(sorted(ids), USAGE_CHUNK):
        names.extend(
            tx.scalars(
                select(t.accounts.c.username)
                .where(t.accounts.c.id.in_(chunk))
                .order_by(t.accounts.c.id)
            )
        )
    return names


def period_start(tx: Transaction, account: AccountRecord, now: datetime) -> date:
    billing_day = account.billing_day
    if account.parent_id is not None:
        billing_day = tx.scalar(
            select(t.accounts.c.billing_day).where(t.accounts.c.id == account.parent_id)
        )
    return billing_period(billing_day or 1, now).start


class Usage:
    """Bytes per account: the daily rows (`usage_daily`) and the totals (`accounts`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
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
            with self._db.transaction() as tx:
                add_usage(tx, {day: totals}, {}, by_day)

    def of(self, account: AccountRecord, now: datetime) -> tuple[int, int]:
        """(bytes in the current billing period, bytes of all time) for one account."""
        with self._db.transaction() as tx:
            start = period_start(tx, account, now)
            monthly = tx.scalar(
                select(func.coalesce(func.sum(t.usage_daily.c.bytes), 0)).where(
                    t.usage_daily.c.account_id == account.id, t.usage_daily.c.day >= start
                )
            )
            total = tx.scalar(select(t.accounts.c.total_bytes).where(t.accounts.c.id == account.id))
            return int(monthly or 0), int(total or 0)

    def of_many(
        self, accounts: Sequence[AccountRecord], now: datetime
    ) -> dict[int, tuple[int, int]]:
        """`usage` for many accounts at once (all sharing one parent's period, or parents)."""
        result: dict[int, tuple[int, int]] = {}
        with self._db.transaction() as tx:
            starts = {a.id: period_start(tx, a, now) for a in accounts}
            totals: dict[int, int] = dict(
                tx.execute(
                    select(t.accounts.c.id, t.accounts.c.total_bytes).where(
                        t.accounts.c.id.in_(starts)
                    )
                ).all()
            )
            for start in set(starts.values()):
                ids = [i for i, s in starts.items() if s == start]
                monthly: dict[int, int] = dict(
                    tx.execute(
                        select(t.usage_daily.c.account_id, func.sum(t.usage_daily.c.bytes))
                        .where(t.usage_daily.c.account_id.in_(ids), t.usage_daily.c.day >= start)
                        .group_by(t.usage_daily.c.account_id)
                    ).all()
                )
                for account_id in ids:
                    result[account_id] = (
                        int(monthly.get(account_id) or 0),
                        int(totals.get(account_id) or 0),
                    )
        return result

    def daily(self, account_id: int, start: date, end: date) -> list[tuple[date, int]]:
        """Daily history, days in [start, end)."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                select(t.usage_daily.c.day, t.usage_daily.c.bytes)
                .where(
                    t.usage_daily.c.account_id == account_id,
                    t.usage_daily.c.day >= start,
                    t.usage_daily.c.day < end,
                )
                .order_by(t.usage_daily.c.day)
            )
            return [(day, int(nbytes)) for day, nbytes in rows]

    def sub_account_daily(
        self, parent_id: int, start: date, end: date, account_ids: Iterable[int] | None = None
    ) -> list[tuple[int, str, date, int]]:
        """(account id, username, day, bytes) of a parent's sub-accounts (or of those of
        `account_ids`), days in [start, end) with usage, by username then day."""
        query = _sub_account_days(
            select(
                t.accounts.c.id, t.accounts.c.username, t.usage_daily.c.day, t.usage_daily.c.bytes
            ),
            parent_id,
            start,
            end,
        ).order_by(t.accounts.c.username, t.usage_daily.c.day)
        if account_ids is not None:
            query = query.where(t.accounts.c.id.in_(list(account_ids)))
        with self._db.transaction() as tx:
            return [(i, name, day, int(nbytes)) for i, name, day, nbytes in tx.execute(query)]

    def top_sub_accounts(
        self, parent_id: int, start: date, end: date, limit: int
    ) -> list[tuple[int, str, int]]:
        """(account id, username, bytes) of the sub-accounts that used most in [start, end)."""
        used = func.sum(t.usage_daily.c.bytes)
        query = (
            _sub_account_days(
                select(t.accounts.c.id, t.accounts.c.username, used), parent_id, start, end
            )
            .group_by(t.accounts.c.id, t.accounts.c.username)
            .having(used > 0)
            .order_by(used.desc(), t.accounts.c.username)
            .limit(limit)
        )
        with self._db.transaction() as tx:
            return [(i, name, int(nbytes)) for i, name, nbytes in tx.execute(query)]
