"""Persistence: SQLAlchemy Core tables (no ORM), Alembic migrations, and the Store: one
repository per part of the data (store.accounts, store.bans, ...) over one engine.

SQLite (WAL) by default; PostgreSQL by URL. Nothing outside this package writes SQL.
"""

from meshproxy.store.errors import StoreUnavailable
from meshproxy.store.store import Store

__all__ = ["Store", "StoreUnavailable"]
