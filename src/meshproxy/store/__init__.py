"""Persistence: SQLAlchemy 2 models, Alembic migrations, and the Store façade.

SQLite (WAL) by default; PostgreSQL by URL. Nothing outside this package writes SQL.
"""

from meshproxy.store.errors import StoreUnavailable
from meshproxy.store.store import Store

__all__ = ["Store", "StoreUnavailable"]
