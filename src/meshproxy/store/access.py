"""What authenticates an account besides its password (IPs, hostnames: each held by one
account at most), and the proxies a parent's tree may use."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Table,
    delete,
    func,
    insert,
    select,
)

from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import tables as t
from meshproxy.store.accounts import lock_parent
from meshproxy.store.changes import note, note_tree
from meshproxy.store.errors import LimitReached
from meshproxy.store.transaction import Database


@dataclass(frozen=True)
class _AccessTable:
    """Where the values that authenticate an account (IPs, hostnames) are kept: the table
    and its column holding the value, unique over all accounts."""

    table: Table
    column: Column[str]


_IPS = _AccessTable(t.authenticated_ips, t.authenticated_ips.c.ip)


_HOSTNAMES = _AccessTable(t.authenticated_hostnames, t.authenticated_hostnames.c.hostname)


class AccessLists:
    """Authenticated IPs and hostnames, authorized proxies."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        with self._db.transaction() as tx:
            return {
                ip: account_id
                for ip, account_id in tx.execute(
                    select(t.authenticated_ips.c.ip, t.authenticated_ips.c.account_id).where(
                        t.authenticated_ips.c.ip.in_(list(ips))
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
        with self._db.transaction() as tx:
            tx.execute(
                insert(table.table).values({"account_id": account.id, table.column.key: value})
            )
            note(tx, "account", account.username)

    def _delete_access(self, table: _AccessTable, account: AccountRecord, value: str) -> bool:
        with self._db.transaction() as tx:
            done = tx.execute(
                delete(table.table).where(
                    table.table.c.account_id == account.id, table.column == value
                )
            )
            note(tx, "account", account.username)
            return bool(done.rowcount)

    def _list_access(self, table: _AccessTable, account: AccountRecord) -> list[str]:
        """In the order they were added."""
        with self._db.transaction() as tx:
            return list(
                tx.scalars(
                    select(table.column)
                    .where(table.table.c.account_id == account.id)
                    .order_by(table.table.c.id)
                )
            )

    def authorized_proxies(self, account: AccountRecord) -> list[str]:
        with self._db.transaction() as tx:
            return list(
                tx.scalars(
                    select(t.authorized_proxies.c.proxy)
                    .where(t.authorized_proxies.c.account_id == account.id)
                    .order_by(t.authorized_proxies.c.proxy)
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
        with self._db.transaction(locked=max_proxies is not None) as tx:
            if max_proxies is not None:
                lock_parent(tx, account.id)
            exists = tx.scalar(
                select(t.authorized_proxies.c.proxy).where(
                    t.authorized_proxies.c.account_id == account.id,
                    t.authorized_proxies.c.proxy == proxy,
                )
            )
            if exists is not None:
                return False
            if max_proxies is not None:
                query = (
                    select(func.count())
                    .select_from(t.authorized_proxies)
                    .where(t.authorized_proxies.c.account_id == account.id)
                )
                if counting is not None:
                    query = query.where(t.authorized_proxies.c.proxy.in_(list(counting)))
                if (tx.scalar(query) or 0) >= max_proxies:
                    raise LimitReached(max_proxies)
            tx.execute(insert(t.authorized_proxies).values(account_id=account.id, proxy=proxy))
            note_tree(tx, account)
            return True

    def deauthorize_proxy(self, account: AccountRecord, proxy: str) -> bool:
        with self._db.transaction() as tx:
            done = tx.execute(
                delete(t.authorized_proxies).where(
                    t.authorized_proxies.c.account_id == account.id,
                    t.authorized_proxies.c.proxy == proxy,
                )
            )
            note_tree(tx, account)
            return bool(done.rowcount)
