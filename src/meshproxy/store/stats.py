"""The request statistics' table (`account_stats`): added to in the usage writes'
transactions (so a fold adds a flush's statistics exactly when it adds its bytes), read
per account and day.

Destination hosts are kept to MAX_HOSTS per account and day: after an add, the hosts
beyond those with most bytes are deleted and their bytes added to `hosts_other`, so the
day's host bytes still add up (which hosts are kept is decided by the bytes seen so far).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date

from sqlalchemy import delete, func, select

from meshproxy.domain.stats import (
    HOST,
    MAX_HOSTS,
    MAX_NAME_LENGTH,
    OTHER_HOSTS,
    DayStats,
    StatDelta,
    day_stats,
    trim_hosts,
)
from meshproxy.store import tables as t
from meshproxy.store.dialect import chunks
from meshproxy.store.transaction import Database, Transaction

CHUNK = 5_000  # rows a statement (4 parameters each: under PostgreSQL's 65,535)

# stats[day][(account id, name)] -> value to add
StatsByDay = Mapping[date, Mapping[tuple[int, str], int]]


def collect(
    into: defaultdict[date, defaultdict[tuple[int, str], int]],
    day: date,
    stats: Iterable[StatDelta],
) -> None:
    """Sum `stats` of `day` into `into` (names too long for the table are left out)."""
    per_day = into[day]
    for stat in stats:
        if stat.value and len(stat.name) <= MAX_NAME_LENGTH:
            per_day[(stat.account_id, stat.name)] += stat.value


def add_stats(tx: Transaction, stats: StatsByDay, existing: Collection[int]) -> None:
    """Add the statistics of the accounts in `existing` (deleted ones are left out), in
    (day, account, name) order like the usage rows, then trim each touched day's hosts."""
    for day in sorted(stats):
        rows = [
            {"account_id": account_id, "day": day, "name": name, "value": value}
            for (account_id, name), value in sorted(stats[day].items())
            if account_id in existing
        ]
        for chunk in chunks(rows, CHUNK):
            statement = tx.insert(t.account_stats).values(chunk)
            tx.execute(
                statement.on_conflict_do_update(
                    index_elements=[
                        t.account_stats.c.account_id,
                        t.account_stats.c.day,
                        t.account_stats.c.name,
                    ],
                    set_={"value": t.account_stats.c.value + statement.excluded.value},
                )
            )
        hosted = sorted({a for (a, name) in stats[day] if name.startswith(HOST) and a in existing})
        _trim_hosts(tx, day, hosted)


def _trim_hosts(tx: Transaction, day: date, account_ids: Sequence[int]) -> None:
    """Trim the hosts of the accounts over MAX_HOSTS on `day`: their hosts read in one query
    (not one per account), then each account's trimmed in id order."""
    is_host = t.account_stats.c.name.startswith(HOST, autoescape=True)
    for chunk in chunks(account_ids, CHUNK):
        over = (
            select(t.account_stats.c.account_id)
            .where(t.account_stats.c.day == day, t.account_stats.c.account_id.in_(chunk), is_host)
            .group_by(t.account_stats.c.account_id)
            .having(func.count() > MAX_HOSTS)
        )
        hosts: defaultdict[int, dict[str, int]] = defaultdict(dict)
        query = select(
            t.account_stats.c.account_id, t.account_stats.c.name, t.account_stats.c.value
        ).where(t.account_stats.c.day == day, t.account_stats.c.account_id.in_(over), is_host)
        for account_id, name, value in tx.execute(query):
            hosts[account_id][name] = int(value)
        for account_id in sorted(hosts):
            dropped, nbytes = trim_hosts(hosts[account_id])
            tx.execute(
                delete(t.account_stats).where(
                    t.account_stats.c.account_id == account_id,
                    t.account_stats.c.day == day,
                    t.account_stats.c.name.in_(sorted(dropped)),
                )
            )
            add_stats(tx, {day: {(account_id, OTHER_HOSTS): nbytes}}, {account_id})


class Stats:
    """The request statistics of accounts and their trees, per day."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def daily(self, account_id: int, start: date, end: date) -> list[DayStats]:
        """The account's figures for each day in [start, end) that has any, by day."""
        rows: dict[date, list[tuple[str, int]]] = defaultdict(list)
        query = select(
            t.account_stats.c.day, t.account_stats.c.name, t.account_stats.c.value
        ).where(
            t.account_stats.c.account_id == account_id,
            t.account_stats.c.day >= start,
            t.account_stats.c.day < end,
        )
        with self._db.transaction() as tx:
            found = list(tx.execute(query))
        for day, name, value in found:
            rows[day].append((name, int(value)))
        return [day_stats(day.isoformat(), rows[day]) for day in sorted(rows)]

    def tree_daily(self, parent_id: int, start: date, end: date) -> list[tuple[str, DayStats]]:
        """(username, figures) of a parent and each of its sub-accounts, for each day in
        [start, end) with any, by username then day."""
        query = (
            select(
                t.accounts.c.username,
                t.account_stats.c.day,
                t.account_stats.c.name,
                t.account_stats.c.value,
            )
            .join(t.accounts, t.accounts.c.id == t.account_stats.c.account_id)
            .where(
                (t.accounts.c.id == parent_id) | (t.accounts.c.parent_id == parent_id),
                t.account_stats.c.day >= start,
                t.account_stats.c.day < end,
            )
        )
        rows: dict[tuple[str, date], list[tuple[str, int]]] = defaultdict(list)
        with self._db.transaction() as tx:
            found = list(tx.execute(query))
        for username, day, name, value in found:
            rows[(username, day)].append((name, int(value)))
        return [
            (username, day_stats(day.isoformat(), rows[(username, day)]))
            for username, day in sorted(rows)
        ]
