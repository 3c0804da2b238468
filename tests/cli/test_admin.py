"""The operator's CLI, driven as an operator would: a subprocess, exit codes, --json parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.local import free_port

from meshproxy.config import load_settings
from meshproxy.store import Store


def runner(env: dict[str, str], cwd: Path) -> Any:
    def meshproxy(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshproxy", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            input=input_text,
            timeout=60,
        )

    return meshproxy


@pytest.fixture
def run(tmp_path: Path) -> Any:
    data_dir = str(tmp_path / "data")
    # A new install's empty database, as `meshproxy db upgrade` makes it (in-process: faster).
    Store.open(load_settings(None, data_dir=data_dir).database_url).close()
    return runner({**os.environ, "MESHPROXY_DATA_DIR": data_dir}, tmp_path)


def test_where_there_is_no_database_admin_says_so_and_creates_nothing(tmp_path: Path) -> None:
    meshproxy = runner(dict(os.environ), tmp_path)  # the default data_dir: ./data, absent
    for args in (("list",), ("create", "pm_new"), ("show", "parent"), ("unban", "192.0.2.1")):
        result = meshproxy("admin", *args)
        assert result.returncode == 1, result
        assert "no database at data/meshproxy.sqlite3" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()
    # Plans and proxies come from the configuration alone: they need no database.
    assert meshproxy("admin", "plans").returncode == 0


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_parent_lifecycle(run: Any) -> None:
    created = as_json(run("admin", "create", "pm_reseller", "--billing-day", "10", "--json"))
    assert created["username"] == "pm_reseller" and created["plan"] == "default"
    assert created["billing_day"] == 10 and created["proxies"] == ["open", "world"]
    assert len(created["password"]) == 20

    changed = as_json(
        run(
            "admin", "set", "pm_reseller", "--monthly-limit", "50", "--total-limit", "500", "--json"
        )
    )
    assert (changed["monthly_bandwidth_limit"], changed["total_bandwidth_limit"]) == (50, 500)

    listed = as_json(run("admin", "list", "--json"))
    assert [row["username"] for row in listed] == ["pm_reseller"]

    off = as_json(run("admin", "deactivate", "pm_reseller", "--json"))
    assert off["active"] is False
    assert as_json(run("admin", "activate", "pm_reseller", "--json"))["active"] is True

    usage = as_json(run("admin", "usage", "pm_reseller", "--json"))
    assert usage["monthly_bandwidth"] == 0.0 and usage["period_start"].endswith("-10")

    assert run("admin", "delete", "pm_reseller", input_text="n\n").returncode != 0
    assert run("admin", "delete", "pm_reseller", "--yes").returncode == 0
    assert as_json(run("admin", "list", "--json")) == []


def test_human_output_is_a_table(run: Any) -> None:
    created = run("admin", "create", "pm_table", "--password", "pw-123")
    assert created.returncode == 0 and "pm_table" in created.stdout
    assert "pw-123" not in created.stdout  # a chosen password is never echoed
    shown = run("admin", "show", "pm_table")
    assert shown.returncode == 0
    assert "pm_table" in shown.stdout and "billing_day" in shown.stdout
    assert "pw-123" not in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("admin", "create", "bad name"), "Enter a valid username"),
        (("admin", "create", "u", "--plan", "gold"), "unknown plan 'gold'"),
        (("admin", "create", "u", "--billing-day", "29"), "billing day must be 1-28"),
        (("admin", "show", "nobody"), "no account named 'nobody'"),
        (("admin", "set", "nobody", "--plan", "default"), "no account named 'nobody'"),
        (("admin", "unban", "192.0.2.1"), "is not banned"),
    ],
)
def test_errors_are_clear_and_exit_non_zero(run: Any, args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_taken_username_and_negative_limit(run: Any) -> None:
    assert run("admin", "create", "pm_x").returncode == 0
    taken = run("admin", "create", "pm_x")
    assert taken.returncode == 1 and "already taken" in taken.stderr
    negative = run("admin", "set", "pm_x", "--monthly-limit", "-1")
    assert negative.returncode == 1 and "monthly limit" in negative.stderr


def test_plans_and_proxies(run: Any) -> None:
    plans = as_json(run("admin", "plans", "--json"))
    assert plans[0]["name"] == "default"
    proxies = as_json(run("admin", "proxies", "--json"))
    assert [p["address"] for p in proxies] == ["open.localhost:31280", "world.localhost:31281"]


def test_bad_config_file_is_reported(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[api]\nhttps_port = 70000\n")
    result = run("admin", "list", "--config", str(config))
    assert result.returncode == 1
    assert "api.https_port" in result.stderr


def test_admin_proxies_never_prints_an_upstream_password(run: Any, tmp_path: Path) -> None:
    """A pool of upstreams with credentials: the table and --json name each by its name or
    host:port, and no password (nor user, raw or percent-encoded) appears anywhere."""
    secrets = ["Pa55-word-http", "s@cks-Secret", "s%40cks-Secret", "tls-Secret-9",
               "buyer1", "buyer2", "buyer3"]
    config = tmp_path / "pools.toml"
    config.write_text(  # an admin port nothing listens on: no node's health mixed in
        f"[admin]\nport = {free_port()}\n"
        '[[proxies]]\nname = "open"\negress = [\n'
        '  { upstream = "http://buyer1:Pa55-word-http@127.0.0.61:3128" },\n'
        '  { upstream = "socks5://buyer2:s%40cks-Secret@127.0.0.62:1080", name = "socks-de" },\n'
        '  { upstream = "https://buyer3:tls-Secret-9@localhost:8443" },\n'
        '  { address = "127.0.0.7" },\n]\n'
    )
    table = run("admin", "proxies", "--config", str(config))
    listed = run("admin", "proxies", "--json", "--config", str(config))
    for result in (table, listed):
        assert result.returncode == 0, result.stderr
        printed = result.stdout + result.stderr
        assert not [secret for secret in secrets if secret in printed], printed
    assert "127.0.0.61:3128" in table.stdout and "socks-de" in table.stdout
    (row,) = as_json(listed)
    assert row["egress"] == ["127.0.0.61:3128", "socks-de", "localhost:8443", "127.0.0.7"]
    assert row["health"] == "unknown (no proxy node answered)"
