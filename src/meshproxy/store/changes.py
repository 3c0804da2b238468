"""The change feed: every write that proxy nodes must learn of adds a row (`note`) in its own
transaction, naming an account (by username) or a banned IP; nodes poll it by increasing id
and reload only what it names. The Database announces a commit's notes after it commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import delete, func, insert, select

from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import tables as t
from meshproxy.store.transaction import Database, Note, Transaction


@dataclass(frozen=True)
class ChangeRecord:
    id: int
    kind: str  # "account" | "ban"
    subject: str


class ChangeNotifier(Protocol):
    """Tells every node of commits at once (Redis pub/sub: fleet/notify.py): a wake-up, the
    feed stays the truth. It never raises: a notice not sent costs only latency."""

    def changed(self, notes: Sequence[Note]) -> None:
        """A commit wrote these change rows."""

    def banned(self, ip: str, until: float) -> None:
        """A ban started, ending at `until` (nodes adopt it without polling)."""

    def check(self) -> None:
        """Called on each poll of the feed and each ping (calls every node makes
        regularly): a channel last found down is tried again, so its health comes back
        with it, not at the next change, which may be long after."""


def note(tx: Transaction, kind: str, subject: str) -> None:
    tx.execute(insert(t.changes).values(kind=kind, subject=subject, at=datetime.now(UTC)))
    tx.notes.append((kind, subject))


def note_tree(tx: Transaction, account: AccountRecord) -> None:
    """A change to a parent that its sub-accounts inherit (authorized proxies)."""
    note(tx, "account", account.username)
    for name in tx.scalars(
        select(t.accounts.c.username).where(t.accounts.c.parent_id == account.id)
    ):
        note(tx, "account", name)


class ChangeFeed:
    """The `changes` table, read by the proxy nodes (proxy/server/sync.py)."""

    def __init__(self, db: Database, notifier: ChangeNotifier | None = None) -> None:
        self._db = db
        self._notifier = notifier

    def latest_id(self) -> int:
        with self._db.transaction() as tx:
            return int(tx.scalar(select(func.max(t.changes.c.id))) or 0)

    def since(self, change_id: int, limit: int = 10_000) -> list[ChangeRecord]:
        if self._notifier is not None:
            self._notifier.check()
        with self._db.transaction() as tx:
            return [
                ChangeRecord(id=row.id, kind=row.kind, subject=row.subject)
                for row in tx.execute(
                    select(t.changes)
                    .where(t.changes.c.id > change_id)
                    .order_by(t.changes.c.id)
                    .limit(limit)
                )
            ]

    def prune(self, older_than: datetime) -> None:
        with self._db.transaction() as tx:
            tx.execute(delete(t.changes).where(t.changes.c.at < older_than))
