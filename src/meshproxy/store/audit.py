"""The audit log's table: entries written one per change, read newest first."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from meshproxy.domain.audit import AuditEntry
from meshproxy.store import models as m
from meshproxy.store.dialect import aware

AUDIT_PAGE = 1000


class AuditRecords:
    """Mixed into `Store`."""

    if TYPE_CHECKING:

        def _session(self, *, locked: bool = False) -> AbstractContextManager[Session]: ...

    def record_audit(self, entry: AuditEntry) -> None:
        with self._session() as session:
            session.add(
                m.AuditLog(
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

    def audit_entries(
        self,
        *,
        owner_id: int | None = None,
        account: str | None = None,
        since: datetime | None = None,
        limit: int = AUDIT_PAGE,
    ) -> list[AuditEntry]:
        """Newest first. `owner_id`: the changes in one parent's tree; `account`: those an
        account made, was the target of, or owns; `since`: at or after."""
        query = select(m.AuditLog).order_by(m.AuditLog.at.desc(), m.AuditLog.id.desc())
        if owner_id is not None:
            query = query.where(m.AuditLog.owner_id == owner_id)
        if account is not None:
            query = query.where(
                or_(
                    m.AuditLog.actor == account,
                    m.AuditLog.target == account,
                    m.AuditLog.owner == account,
                )
            )
        if since is not None:
            query = query.where(m.AuditLog.at >= since)
        with self._session() as session:
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
                for row in session.scalars(query.limit(limit))
            ]
