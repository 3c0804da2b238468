"""`meshproxy admin bans` on a node with Redis: the bans and the failure counts kept there,
beside those the database kept while Redis was down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshproxy.domain.bans import BanPolicy
from meshproxy.fleet import fleet_store, sync_client
from meshproxy.store import Store
from meshproxy.store.engine import make_engine

POLICY = BanPolicy(max_failures=3, window_seconds=600, ban_seconds=3600)


@pytest.mark.redis
def test_bans_and_failures_from_redis_and_the_database(
    tmp_path: Path, sqlite_url: str, redis_url: str, redis_prefix: str
) -> None:
    now = time.time()
    shared = fleet_store(make_engine(sqlite_url), sync_client(redis_url), redis_prefix)
    shared.migrate()
    try:
        for _ in range(3):
            shared.bans.record_failure("127.0.0.9", now, POLICY)  # the third bans it
        for _ in range(2):
            shared.bans.record_failure("127.0.0.8", now, POLICY)
        shared.bans.record_failure("127.0.0.6", now - 3600, POLICY)  # out of the window
        since = now - POLICY.window_seconds
        assert shared.bans.shared is not None
        assert shared.bans.shared.failure_counts(since) == {"127.0.0.8": 2}
    finally:
        shared.close()
    database = Store.open(sqlite_url)  # as if counted while Redis was down
    try:
        database.bans.record_failure("127.0.0.7", now, POLICY)
    finally:
        database.close()
    listed = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "bans", "--json"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "MESHPROXY_DATA_DIR": str(tmp_path / "data"),
             "MESHPROXY_DATABASE_URL": sqlite_url, "MESHPROXY_REDIS_URL": redis_url,
             "MESHPROXY_SHARED__PREFIX": redis_prefix, "MESHPROXY_BAN__MAX_FAILURES": "3"},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["address"], r["failures"]) for r in rows] == [
        ("127.0.0.9", 0), ("127.0.0.7", 1), ("127.0.0.8", 2)
    ]
    assert rows[0]["until"] is not None and rows[1]["until"] is None
