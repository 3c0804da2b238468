"""What differs between the two databases and the store's modules share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Table

T = TypeVar("T")


def insert_for(dialect: str, table: Table) -> Any:
    """The INSERT of the dialect named `dialect`, which has ON CONFLICT."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded by PostgreSQL nodes only (2 MiB)

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite  # loaded by SQLite nodes only, as PostgreSQL's above

    return sqlite.insert(table)


def aware(moment: datetime) -> datetime:
    """A datetime read back as stored: SQLite returns it without its zone (UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size` (statements stay under PostgreSQL's 65,535
    parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
