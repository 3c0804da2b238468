"""Files with secrets in the data directory are created owner-only (0600), whatever the
umask: the SQLite database (password hashes, API keys) with its WAL files, and the TLS key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from meshproxy.api.tls import ensure_certificate
from meshproxy.config import load_settings
from meshproxy.store.engine import make_engine


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask a host may have: without an explicit mode, files come out 0666."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    database = tmp_path / "data" / "meshproxy.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:  # WAL mode: -wal and -shm exist while open
            assert connection.execute(text("SELECT x FROM t")).scalar() == 1
            wal_files = [database.with_name(database.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in wal_files)
            assert {p.name: mode(p) for p in [database, *wal_files]} == {
                p.name: 0o600 for p in [database, *wal_files]
            }
    finally:
        engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "shared.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    database.chmod(0o640)  # the operator's choice (a backup group may read it)
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    assert mode(database) == 0o640


def test_the_generated_tls_key_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    settings = load_settings(None, data_dir=str(tmp_path / "data"))
    cert, key = ensure_certificate(settings)
    assert mode(key) == 0o600
    assert mode(cert) == 0o644  # public, but not writable by others under any umask
    # Regenerated over an old, loose key file (a listen host the certificate misses):
    key.chmod(0o644)
    data_dir = str(tmp_path / "data")
    regenerated = load_settings(None, data_dir=data_dir, api={"listen": "api.internal"})
    assert ensure_certificate(regenerated)[1] == key
    assert mode(key) == 0o600
