"""Migrations 0006 (audit_log) and 0008 (usage alerts) on both backends: `meshproxy db
upgrade` reaches them, they can be taken back, and applied again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from meshproxy.store import Store
from meshproxy.store.migrate import alembic_config, current_revision

ALERT_TABLES = {"webhooks", "usage_notices", "webhook_deliveries", "delivery_attempts"}


def tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_db_upgrade_creates_the_tables(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meshproxy", "db", "upgrade"],
        env={**os.environ, "MESHPROXY_DATA_DIR": str(tmp_path / "data")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'meshproxy.sqlite3'}", migrate=False)
    try:
        assert ALERT_TABLES | {"audit_log"} <= tables(store)
    finally:
        store.close()


def test_down_and_up_again(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        head = current_revision(store.engine)
        command.downgrade(alembic_config(store.engine), "0007")
        assert not ALERT_TABLES & tables(store) and "audit_log" in tables(store)
        command.downgrade(alembic_config(store.engine), "0005")
        assert "audit_log" not in tables(store)
        store.migrate()
        assert current_revision(store.engine) == head
        assert ALERT_TABLES | {"audit_log"} <= tables(store)
    finally:
        store.close()
