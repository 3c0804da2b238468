"""What differs between the two databases and the store's modules share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from meshproxy.store import models as m


def insert_for(session: Session, model: type[m.Base]) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded by PostgreSQL nodes only (2 MiB)

        return postgresql.insert(model)
    return sqlite.insert(model)


def aware(moment: datetime) -> datetime:
    """A datetime read back as stored: SQLite returns it without its zone (UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
