"""The audit log's table: entries written one per change, read newest first."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert, or_, select

from meshproxy.domain.audit import AuditEntry
from meshproxy.store import tables as t
from meshproxy.store.dialect import aware
from meshproxy.store.transaction import Database

AUDIT_PAGE = 1000


class AuditLog:
    """The `audit_log` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, entry: AuditEntry) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                insert(t.audit_log).values(
                    at=entry.at,
                    actor=entry.actor[:30],
                    operation=entry.operation[:40],
                    target=entry.target[:255],
                    fields=json.dumps(dict(entry.fields), sort_keys=True),
                    via=entry.via[:16],
                    client=None if entry.client is None else entry.client[:255],
                    owner_id=entry.owner_id,
                    owner=None if entry.owner is None else entry.owner[:30],
                )
            )

    def entries(
        self,
        *,
        owner_id: int | None = None,
        account: str | None = None,
        since: datetime | None = None,
        limit: int = AUDIT_PAGE,
    ) -> list[AuditEntry]:
        """Newest first. `owner_id`: the changes in one parent's tree; `account`: those an
        account made, was the target of, or owns; `since`: at or after."""
        query = select(t.audit_log).order_by(t.audit_log.c.at.desc(), t.audit_log.c.id.desc())
        if owner_id is not None:
            query = query.where(t.audit_log.c.owner_id == owner_id)
        if account is not None:
            query = query.where(
                or_(
                    t.audit_log.c.actor == account,
                    t.audit_log.c.target == account,
                    t.audit_log.c.owner == account,
                )
            )
        if since is not None:
            query = query.where(t.audit_log.c.at >= since)
        with self._db.transaction() as tx:
            return [
                AuditEntry(
                    id=row.id,
                    at=aware(row.at),
                    actor=row.actor,
                    operation=row.operation,
                    target=row.target,
                    fields=json.loads(row.fields),
                    via=row.via,
                    client=row.client,
                    owner_id=row.owner_id,
                    owner=row.owner,
                )
                for row in tx.execute(query.limit(limit))
            ]
