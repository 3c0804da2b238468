"""Engines: SQLite gets WAL, foreign keys and a busy timeout; anything else is used as given.
`lock_for_writing` starts a transaction that must hold the write lock before it reads.

A SQLite file this creates is readable by its owner only (0600, whatever the umask): it
holds password hashes and API keys. SQLite gives its -wal and -shm files the database
file's mode. An existing file keeps the mode it has (the operator's choice)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        _create_owner_only(Path(parsed.database))
    engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit off in the driver; SQLAlchemy drives the transactions itself.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _create_owner_only(path: Path) -> None:
    """Create the database file (empty: a valid empty SQLite database) with mode 0600 if it
    does not exist yet, so that SQLite never creates it with the umask's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)  # the umask may have removed bits, never added; be exact


def lock_for_writing(connection: Connection) -> None:
    """On SQLite, take the database's write lock now (BEGIN IMMEDIATE, waiting up to the busy
    timeout), so what the transaction reads cannot change before it writes. pysqlite begins
    a transaction only before its first INSERT/UPDATE/DELETE, so a count read first would
    see a state another writer is changing; an explicit BEGIN as the transaction's first
    statement takes its place (commit and rollback end it as usual). Other databases lock
    rows instead (SELECT ... FOR UPDATE): nothing to do here. Call it first thing in a
    transaction."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
