"""`meshproxy admin logs` and `admin bans` as an operator runs them: a subprocess, exit
codes, --json parsed, tables read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bench.local import free_port

from accesslog.entries import entry
from meshproxy.accesslog.formats import JsonFormat, line
from meshproxy.accesslog.record import TUNNEL, Entry
from meshproxy.config import load_settings
from meshproxy.domain.bans import BanPolicy
from meshproxy.store import Store

T = 1_764_754_262.0  # 2025-12-03T09:31:02Z


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(data: Path) -> Any:
    env = {**os.environ, "MESHPROXY_DATA_DIR": str(data)}

    def meshproxy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshproxy", "admin", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )

    return meshproxy


def _write(path: Path, *entries: Entry) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line_format = JsonFormat("node-a", paths=False)
    path.write_text("".join(line(line_format, e) + "\n" for e in entries))


@pytest.fixture
def access_log(data: Path) -> Path:
    """Two kept files: 127.0.0.2 used by a tunnel across T (older file) and by bob at T."""
    _write(
        data / "access.log.1",
        entry(time=T - 3600, egress="127.0.0.2", account="early"),
        entry(time=T + 30, duration=60.0, egress="127.0.0.2", account="tunneller",
              method=b"CONNECT", port=443, outcome=TUNNEL),
    )
    _write(
        data / "access.log",
        entry(time=T, egress="127.0.0.2", account="bob", parent="reseller", client="127.0.0.7"),
        entry(time=T + 1, egress="127.0.0.3", account="carol", client="127.0.0.7"),
        entry(time=T + 3600, egress="127.0.0.2", account="late"),
    )
    return data / "access.log"


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_who_used_an_egress_at_a_time(run: Any, access_log: Path) -> None:
    found = _json(run("logs", "--egress", "127.0.0.2", "--at", "2025-12-03T09:31:02Z", "--json"))
    assert [(r["account"], r["method"]) for r in found] == [
        ("tunneller", "CONNECT"), ("bob", "GET")
    ]
    assert found[1]["parent"] == "reseller" and found[1]["client"] == "127.0.0.7"
    assert found[1]["time"] == "2025-12-03T09:31:02.000Z" and found[1]["node"] == "node-a"
    table = run("logs", "--egress", "127.0.0.2", "--at", "2025-12-03T09:31:02", "--window", "5")
    assert table.returncode == 0, table.stderr
    assert "bob" in table.stdout and "tunneller" in table.stdout
    assert "carol" not in table.stdout and "early" not in table.stdout


def test_by_account_client_window_and_limit(run: Any, access_log: Path) -> None:
    assert [r["account"] for r in _json(run("logs", "--account", "reseller", "--json"))] == ["bob"]
    by_client = _json(run("logs", "--client", "127.0.0.7", "--json"))
    assert [r["account"] for r in by_client] == ["bob", "carol"]
    since = _json(run("logs", "--since", str(T + 0.5), "--until", "2025-12-03T10:00:00Z",
                      "--json"))
    assert [r["account"] for r in since] == ["tunneller", "carol"]
    assert [r["account"] for r in _json(run("logs", "--limit", "2", "--json"))] == [
        "carol", "late"
    ]
    elsewhere = access_log.rename(access_log.parent / "kept.log")
    assert [r["account"] for r in _json(run("logs", "--file", str(elsewhere), "--json"))] == [
        "bob", "carol", "late"
    ]


def test_mistakes_are_clean_errors(run: Any, data: Path) -> None:
    missing = run("logs")
    assert missing.returncode == 1 and f"no access log at {data / 'access.log'}" in missing.stderr
    bad = run("logs", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
    both = run("logs", "--at", str(T), "--since", str(T))
    assert both.returncode == 2 and "--at replaces" in both.stderr


def test_bans_lists_bans_and_failures(run: Any, data: Path) -> None:
    settings = load_settings(None, data_dir=str(data))
    data.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.database_url)
    try:
        policy = BanPolicy(max_failures=4, window_seconds=600, ban_seconds=3600)
        now = time.time()
        for _ in range(4):
            store.bans.record_failure("127.0.0.9", now, policy)  # the fourth bans it
        for _ in range(2):
            store.bans.record_failure("127.0.0.8", now, policy)
        store.bans.record_failure("127.0.0.6", now - 3600, policy)  # outside the window
        store.bans.record("127.0.0.5", now + 60)
    finally:
        store.close()
    rows = _json(run("bans", "--json"))
    assert [(r["address"], r["failures"]) for r in rows] == [
        ("127.0.0.9", 0), ("127.0.0.5", 0), ("127.0.0.8", 2)
    ]
    assert rows[0]["until"] > rows[1]["until"] and rows[2]["until"] is None
    table = run("bans")
    assert table.returncode == 0 and "127.0.0.8" in table.stdout


def _proxy_node_log(data: Path, **env: str) -> str:
    """What `meshproxy proxy` writes to stderr from its start to a SIGTERM."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "meshproxy", "proxy", "--drain-timeout", "0.5"],
        env={
            **os.environ, "MESHPROXY_DATA_DIR": str(data), "MESHPROXY_ADMIN__PORT": "0",
            "MESHPROXY_PROXIES": json.dumps([{"name": "open", "port": port}]), **env,
        },
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        assert "listening on" in process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    return stderr


def test_log_level_sets_the_nodes_own_log(data: Path) -> None:
    assert " INFO meshproxy.proxy: proxy listeners" in _proxy_node_log(data)
    quiet = _proxy_node_log(data, MESHPROXY_LOG_LEVEL="warning")
    assert " INFO " not in quiet and "proxy listeners" not in quiet
