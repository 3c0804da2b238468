"""Client-IP bans: authentication failures counted per address within the ban window
(domain.bans.BanPolicy), the bans they start, and the successes that reset them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Column,
    case,
    delete,
    func,
    insert,
    select,
)

from meshproxy.domain.bans import BanBook, BanPolicy
from meshproxy.store import tables as t
from meshproxy.store.changes import ChangeNotifier, note
from meshproxy.store.errors import Conflict, SharedUnavailable, StoreUnavailable
from meshproxy.store.transaction import Database, Transaction

log = logging.getLogger("meshproxy.store.bans")
T = TypeVar("T")


def _reset_at(tx: Transaction, ip: str) -> float | None:
    """When the address last succeeded (or was unbanned): None if never."""
    at = tx.scalar(select(t.auth_resets.c.at).where(t.auth_resets.c.ip == ip))
    return None if at is None else float(at)


def _upsert_latest(
    tx: Transaction, key: Column[str], column: Column[float], key_value: str, value: float
) -> Any:
    """INSERT a row, or raise its `column` to `value` where the row exists (never lower
    it): one statement, so concurrent writers of the same key (two requests from one
    address) cannot both insert."""
    statement = tx.insert(key.table).values({key.key: key_value, column.key: value})
    excluded = getattr(statement.excluded, column.key)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={column.key: case((excluded > column, excluded), else_=column)}
    )


class SharedBans(Protocol):
    """The ban kept outside the database and shared by every node (Redis: fleet/bans.py),
    under the same rule (domain.bans.BanPolicy). A call raises `SharedUnavailable` while it
    cannot be reached: the database's tables decide meanwhile."""

    def record_failure(self, ip: str, now: float, policy: BanPolicy) -> float | None: ...

    def record_success(self, ip: str, at: float | None) -> None: ...

    def ban_until(self, ip: str, now: float) -> float | None: ...

    def active(self, now: float) -> dict[str, float]: ...

    def failure_counts(self, since: float) -> dict[str, int]: ...

    def unban(self, ip: str) -> bool: ...


class Bans:
    """The ban of client IPs: in the `bans`, `auth_failures` and `auth_resets` tables, and
    in `shared` (Redis) when the nodes share one. With `shared`, failures are counted there
    (the tables while it is unreachable, logged); bans are read from both, so one decided
    during an outage still holds afterwards; a ban decided there is written to the tables
    too, so it outlives a Redis restarted empty, and announced by `notifier` with its end,
    so every node adopts it at once."""

    def __init__(
        self,
        db: Database,
        shared: SharedBans | None = None,
        notifier: ChangeNotifier | None = None,
    ) -> None:
        self._db = db
        self.shared = shared
        self._notifier = notifier
        # The ban book of this process's proxies (set by the proxy node, which keeps it
        # current from the change feed), shared with the API and dashboard of the same
        # process: a ban either face decides holds on the other at once.
        self.local: BanBook | None = None

    def record_failure(self, ip: str, at: float, policy: BanPolicy) -> float | None:
        """Count a failure from `ip` that happened at `at` (a proxy reports its failures a
        moment later); returns the ban's end if this one starts a ban. A failure from
        before the address's last success does not count: failures count in the order
        they happened, whichever face saw them."""
        until = self._shared_or(
            lambda shared: shared.record_failure(ip, at, policy),
            lambda: self._count_failure(ip, at, policy),
        )
        if until is not None and self.shared is not None:
            self._announce(ip, until)  # adopted at once by every node
            try:  # and in the tables: it outlives Redis, and reaches nodes that missed it
                self._write(ip, until)
            except (StoreUnavailable, Conflict):
                log.warning("ban of %s not written to the store (down, or written meanwhile)", ip)
        return until

    def record(self, ip: str, until: float, decided_at: float | None = None) -> bool:
        """A ban decided elsewhere (a proxy's own count), kept here too: every face reads
        it, and its change row (and announcement) tells every node. One `decided_at`
        before the address's last success or unban (a proxy's report arriving late) is not
        written: False."""
        written = self._write(ip, until, decided_at)
        if written:
            self._announce(ip, until)
        return written

    def record_success(self, ip: str, at: float | None = None) -> None:
        """A success from `ip` at `at`: the failures until then stop counting, also those
        reported after this call (without `at`: every failure recorded so far)."""
        self._shared_or(
            lambda shared: shared.record_success(ip, at), lambda: self._reset_failures(ip, at)
        )

    def until(self, ip: str, now: float) -> float | None:
        shared = self._shared_or(lambda shared: shared.ban_until(ip, now), lambda: None)
        if shared is not None:
            return shared
        local = self.local
        if local is not None:
            until = local.banned_until(ip, now)
            if until is not None:
                return until
        with self._db.transaction() as tx:
            until = tx.scalar(select(t.bans.c.until).where(t.bans.c.ip == ip, t.bans.c.until > now))
            return None if until is None else float(until)

    def active(self, now: float) -> dict[str, float]:
        with self._db.transaction() as tx:
            stored = {
                ip: float(until)
                for ip, until in tx.execute(
                    select(t.bans.c.ip, t.bans.c.until).where(t.bans.c.until > now)
                )
            }
        return {**stored, **self._shared_or(lambda shared: shared.active(now), dict)}

    def unban(self, ip: str) -> bool:
        """Lift the ban and the count; failures and bans from before now, reported later by a
        proxy, do not bring it back."""
        shared = self._shared_or(lambda shared: shared.unban(ip), lambda: False)
        now = time.time()
        local = self.local
        lifted = local is not None and local.banned_until(ip, now) is not None
        if local is not None:
            local.unban(ip)
        with self._db.transaction() as tx:
            _reset(tx, ip, now)
            done = tx.execute(delete(t.bans).where(t.bans.c.ip == ip))
            tx.execute(delete(t.auth_failures).where(t.auth_failures.c.ip == ip))
            note(tx, "ban", ip)
            return lifted or bool(done.rowcount) or shared

    def failure_counts(self, since: float) -> dict[str, int]:
        """Authentication failures per client IP counted at `since` or later (`admin bans`):
        the shared counts, and the tables' for addresses it has none of (counted there
        while it was unreachable)."""
        with self._db.transaction() as tx:
            stored = {
                ip: int(count)
                for ip, count in tx.execute(
                    select(t.auth_failures.c.ip, func.count())
                    .where(t.auth_failures.c.at >= since)
                    .group_by(t.auth_failures.c.ip)
                )
            }
        return {**stored, **self._shared_or(lambda shared: shared.failure_counts(since), dict)}

    def _shared_or(self, work: Callable[[SharedBans], T], fallback: Callable[[], T]) -> T:
        """`work` done by the shared ban; `fallback` without one, or while it is down."""
        if self.shared is None:
            return fallback()
        try:
            return work(self.shared)
        except SharedUnavailable:
            return fallback()

    def _announce(self, ip: str, until: float) -> None:
        if self._notifier is not None:
            self._notifier.banned(ip, until)

    def _count_failure(self, ip: str, at: float, policy: BanPolicy) -> float | None:
        """`record_failure` in the tables: the failure added, those out of the window
        dropped, a ban started when `policy.max_failures` remain."""
        with self._db.transaction() as tx:
            reset = _reset_at(tx, ip)
            if reset is not None and at < reset:
                return None  # from before a success, reported late
            tx.execute(insert(t.auth_failures).values(ip=ip, at=at))
            tx.execute(
                delete(t.auth_failures).where(
                    t.auth_failures.c.ip == ip, t.auth_failures.c.at <= at - policy.window_seconds
                )
            )
            count = (
                tx.scalar(
                    select(func.count())
                    .select_from(t.auth_failures)
                    .where(t.auth_failures.c.ip == ip)
                )
                or 0
            )
            if count < policy.max_failures:
                return None
            tx.execute(delete(t.auth_failures).where(t.auth_failures.c.ip == ip))
            _ban(tx, ip, at + policy.ban_seconds)
            # The ban's end as stored: a ban in force that ends later is kept (BanBook's rule).
            until = float(tx.scalar(select(t.bans.c.until).where(t.bans.c.ip == ip)) or 0.0)
        self._adopt(ip, until)
        return until

    def _write(self, ip: str, until: float, decided_at: float | None = None) -> bool:
        """The ban in the tables (and the local book), unless `decided_at` is before the
        address's last success or unban: False."""
        with self._db.transaction() as tx:
            if decided_at is not None:
                reset = _reset_at(tx, ip)
                if reset is not None and decided_at < reset:
                    return False
            _ban(tx, ip, until)
        self._adopt(ip, until)
        return True

    def _adopt(self, ip: str, until: float) -> None:
        if self.local is not None:
            self.local.ban(ip, until)

    def _reset_failures(self, ip: str, at: float | None) -> None:
        """`record_success` in the tables."""
        with self._db.transaction() as tx:
            wiped = delete(t.auth_failures).where(t.auth_failures.c.ip == ip)
            if at is not None:
                _reset(tx, ip, at)
                wiped = wiped.where(t.auth_failures.c.at <= at)
            tx.execute(wiped)


def _ban(tx: Transaction, ip: str, until: float) -> None:
    tx.execute(_upsert_latest(tx, t.bans.c.ip, t.bans.c.until, ip, until))
    note(tx, "ban", ip)


def _reset(tx: Transaction, ip: str, at: float) -> None:
    """Failures (and bans decided) before `at` no longer count, however late reported."""
    tx.execute(_upsert_latest(tx, t.auth_resets.c.ip, t.auth_resets.c.at, ip, at))
