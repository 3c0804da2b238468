"""What differs between the two databases and the store's modules share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from meshproxy.store import models as m

T = TypeVar("T")


def insert_for(session: Session, model: type[m.Base]) -> Any:
    """The dialect's INSERT, which has ON CONFLICT."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded by PostgreSQL nodes only (2 MiB)

        return postgresql.insert(model)
    return sqlite.insert(model)


def aware(moment: datetime) -> datetime:
    """A datetime read back as stored: SQLite returns it without its zone (UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size` (statements stay under PostgreSQL's 65,535
    parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
