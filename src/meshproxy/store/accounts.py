"""Accounts: parents and their sub-accounts, created, read, changed and deleted."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Select,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from meshproxy.domain.accounts import AccountRecord, AccountView
from meshproxy.domain.billing import billing_period
from meshproxy.domain.limits import Limits
from meshproxy.store import tables as t
from meshproxy.store.changes import note
from meshproxy.store.dialect import aware
from meshproxy.store.errors import LimitReached
from meshproxy.store.folds import stored_generation
from meshproxy.store.transaction import AnyRow, Database, Transaction

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


def record_of(row: AnyRow, parent_username: str | None = None) -> AccountRecord:
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


def with_parent_name() -> Select[Any]:
    """Accounts' rows, each with its parent's username (`parent_username`; None: a parent)."""
    parent = t.accounts.alias("parent")
    return select(t.accounts, parent.c.username.label("parent_username")).outerjoin(
        parent, t.accounts.c.parent_id == parent.c.id
    )


def lock_parent(tx: Transaction, parent_id: int) -> None:
    """Lock the parent's row until the transaction ends (PostgreSQL; SQLite holds the
    whole database's write lock already): writes that count a parent's children go one
    after another."""
    tx.execute(select(t.accounts.c.id).where(t.accounts.c.id == parent_id).with_for_update())


def username_of(tx: Transaction, account_id: int | None) -> str | None:
    if account_id is None:
        return None
    username: str | None = tx.scalar(
        select(t.accounts.c.username).where(t.accounts.c.id == account_id)
    )
    return username


def count_subs(tx: Transaction, parent_id: int) -> int:
    query = select(func.count()).select_from(t.accounts).where(t.accounts.c.parent_id == parent_id)
    return tx.scalar(query) or 0


class Accounts:
    """The `accounts` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
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
        with self._db.transaction(locked=max_siblings is not None) as tx:
            if max_siblings is not None and parent_id is not None:
                lock_parent(tx, parent_id)
                if count_subs(tx, parent_id) >= max_siblings:
                    raise LimitReached(max_siblings)
            row = tx.execute(
                insert(t.accounts)
                .values(
                    username=username,
                    parent_id=parent_id,
                    created_at=now or datetime.now(UTC),
                    total_bytes=0,
                    # Defaults, overridable by the caller (a sub-account created with limits).
                    **{"active": True, "monthly_limit_gb": 0, "total_limit_gb": 0, **fields},
                )
                .returning(*t.accounts.c)
            ).one()
            rows = [{"account_id": row.id, "proxy": proxy} for proxy in proxies]
            if rows:
                tx.execute(insert(t.authorized_proxies), rows)
            note(tx, "account", username)
            return record_of(row, username_of(tx, parent_id))

    def get(self, username: str) -> AccountRecord | None:
        if "\x00" in username:
            # No username holds NUL (forms refuse it); PostgreSQL would refuse the query.
            return None
        with self._db.transaction() as tx:
            row = tx.execute(with_parent_name().where(t.accounts.c.username == username)).first()
            return None if row is None else record_of(row, row.parent_username)

    def update(self, username: str, **fields: Any) -> AccountRecord | None:
        unknown = set(fields) - ACCOUNT_FIELDS
        if unknown:
            raise TypeError(f"unknown account fields: {sorted(unknown)}")
        values: dict[str, Any] = dict(fields)
        if "password_hash" in fields:  # a new password ends every dashboard session
            values["session_epoch"] = t.accounts.c.session_epoch + 1
        named = t.accounts.c.username == username
        with self._db.transaction() as tx:
            if values:
                found = tx.execute(
                    update(t.accounts).where(named).values(values).returning(*t.accounts.c)
                )
            else:
                found = tx.execute(select(t.accounts).where(named))
            row = found.first()
            if row is None:
                return None
            note(tx, "account", username)
            return record_of(row, username_of(tx, row.parent_id))

    def bump_session_epoch(self, username: str) -> int | None:
        """End every dashboard session of the account; returns the new epoch (None: no
        such account). No change row: proxies do not look at dashboard sessions."""
        with self._db.transaction() as tx:
            tx.execute(
                update(t.accounts)
                .where(t.accounts.c.username == username)
                .values(session_epoch=t.accounts.c.session_epoch + 1)
            )
            epoch: int | None = tx.scalar(
                select(t.accounts.c.session_epoch).where(t.accounts.c.username == username)
            )
            return epoch

    def delete(self, username: str) -> bool:
        """Delete an account with all its data (and, for a parent, its sub-accounts)."""
        with self._db.transaction() as tx:
            account_id = tx.scalar(select(t.accounts.c.id).where(t.accounts.c.username == username))
            if account_id is None:
                return False
            subs = tx.scalars(
                select(t.accounts.c.username).where(t.accounts.c.parent_id == account_id)
            ).all()
            # The database deletes its rows, and its sub-accounts (ON DELETE CASCADE).
            tx.execute(delete(t.accounts).where(t.accounts.c.id == account_id))
            for name in (username, *subs):
                note(tx, "account", name)
            return True

    def list(
        self,
        *,
        parent_id: int | None = None,
        parents: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[AccountRecord]:
        """Sub-accounts of `parent_id`, or all parent accounts (`parents=True`), by username."""
        query = with_parent_name().order_by(t.accounts.c.username).offset(offset).limit(limit)
        if parents:
            query = query.where(t.accounts.c.parent_id.is_(None))
        elif parent_id is not None:
            query = query.where(t.accounts.c.parent_id == parent_id)
        with self._db.transaction() as tx:
            return [record_of(row, row.parent_username) for row in tx.execute(query)]

    def count_sub_accounts(self, parent_id: int) -> int:
        with self._db.transaction() as tx:
            return count_subs(tx, parent_id)

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
            select(t.usage_daily.c.account_id, func.sum(t.usage_daily.c.bytes).label("bytes"))
            .join(t.accounts, t.accounts.c.id == t.usage_daily.c.account_id)
            .where(t.accounts.c.parent_id == parent.id, t.usage_daily.c.day >= start)
            .group_by(t.usage_daily.c.account_id)
            .subquery()
        )
        monthly_bytes = func.coalesce(monthly.c.bytes, 0)
        matches = [t.accounts.c.parent_id == parent.id]
        if "\x00" in search:  # no field holds NUL; SQLite's LIKE would stop at it
            matches.append(false())
        elif search:
            needle = search.lower()
            matches.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (
                            t.accounts.c.username,
                            t.accounts.c.email,
                            t.accounts.c.first_name,
                            t.accounts.c.last_name,
                        )
                    )
                )
            )
        key = {
            "username": t.accounts.c.username,
            "active": t.accounts.c.active,
            "monthly": monthly_bytes,
            "total": t.accounts.c.total_bytes,
            "created": t.accounts.c.created_at,
        }[sort]
        query = (
            select(t.accounts, monthly_bytes.label("monthly_bytes"))
            .outerjoin(monthly, monthly.c.account_id == t.accounts.c.id)
            .where(*matches)
            .order_by(key.desc() if descending else key.asc(), t.accounts.c.username)
            .offset(offset)
            .limit(limit)
        )
        with self._db.transaction() as tx:
            rows = [
                SubAccountRow(
                    record_of(row, parent.username),
                    int(row.monthly_bytes),
                    int(row.total_bytes),
                )
                for row in tx.execute(query)
            ]
            count = tx.scalar(select(func.count()).select_from(t.accounts).where(*matches))
            return SubAccountPage(rows=rows, matching=int(count or 0))

    def views(
        self,
        now: datetime,
        usernames: Iterable[str] | None = None,
        generation: str | None = None,
    ) -> builtins.list[AccountView]:
        """Full views of all accounts (or of `usernames`, with their parents' for context).
        Given the shared-counter `generation` a node counts in, folded_bytes are 0 unless
        the store's folded_bytes count that generation (read in the same transaction).

        A full load filters nothing by id (no IN lists: PostgreSQL takes at most 65,535
        parameters, and scanning whole tables is what a full load needs anyway)."""
        wanted = None if usernames is None else set(usernames)
        with self._db.transaction() as tx:
            query = select(t.accounts)
            if wanted is not None:
                query = query.where(t.accounts.c.username.in_(wanted))
            rows = list(tx.execute(query))
            if not rows:
                return []
            fresh = generation is None or generation == stored_generation(tx)
            ids = {row.id for row in rows}
            parent_ids = {row.parent_id for row in rows if row.parent_id is not None}

            def among(column: Any, values: set[int]) -> Any:
                return true() if wanted is None else column.in_(values)

            names: dict[int, str] = {row.id: row.username for row in rows}
            billing: dict[int, int | None] = {row.id: row.billing_day for row in rows}
            missing = parent_ids - ids  # parents of reloaded sub-accounts
            if missing:
                for account_id, username, billing_day in tx.execute(
                    select(t.accounts.c.id, t.accounts.c.username, t.accounts.c.billing_day).where(
                        t.accounts.c.id.in_(missing)
                    )
                ):
                    names[account_id] = username
                    billing[account_id] = billing_day
            ips: dict[int, list[str]] = defaultdict(list)
            for account_id, ip in tx.execute(
                select(t.authenticated_ips.c.account_id, t.authenticated_ips.c.ip).where(
                    among(t.authenticated_ips.c.account_id, ids)
                )
            ):
                ips[account_id].append(ip)
            hostnames: dict[int, list[str]] = defaultdict(list)
            hostname_ids: dict[int, list[int]] = defaultdict(list)
            for row_id, account_id, hostname in tx.execute(
                select(
                    t.authenticated_hostnames.c.id,
                    t.authenticated_hostnames.c.account_id,
                    t.authenticated_hostnames.c.hostname,
                )
                .where(among(t.authenticated_hostnames.c.account_id, ids))
                .order_by(t.authenticated_hostnames.c.id)
            ):
                hostnames[account_id].append(hostname)
                hostname_ids[account_id].append(row_id)
            proxies: dict[int, list[str]] = defaultdict(list)
            for account_id, proxy in tx.execute(
                select(t.authorized_proxies.c.account_id, t.authorized_proxies.c.proxy).where(
                    among(t.authorized_proxies.c.account_id, parent_ids | ids)
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
                sums = tx.execute(
                    select(t.usage_daily.c.account_id, func.sum(t.usage_daily.c.bytes))
                    .where(among(t.usage_daily.c.account_id, group), t.usage_daily.c.day >= start)
                    .group_by(t.usage_daily.c.account_id)
                )
                monthly.update((i, int(n or 0)) for i, n in sums if i in group)
            return [
                AccountView(
                    account=record_of(row, names.get(row.parent_id) if row.parent_id else None),
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
