"""`meshproxy admin audit`: the operator's own changes (create, set, unban) recorded as the
operator from the CLI, filtered by account and time, never with a password."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

from meshproxy.config import load_settings
from meshproxy.store import Store

from .test_admin import as_json, run  # noqa: F401  (the fixture)


def test_operator_changes_are_listed_and_filtered(run: Any, tmp_path: Path) -> None:  # noqa: F811
    as_json(run("admin", "create", "pm_one", "--password", "one-password-1", "--json"))
    as_json(run("admin", "create", "pm_two", "--json"))
    as_json(
        run("admin", "set", "pm_one", "--monthly-limit", "9", "--password", "pw-two-22", "--json")
    )
    settings = load_settings(None, data_dir=str(tmp_path / "data"))
    store = Store.open(settings.database_url)
    store.bans.record("192.0.2.7", 4_000_000_000.0)
    store.close()
    assert run("admin", "unban", "192.0.2.7").returncode == 0
    result = run("admin", "audit", "--json")
    assert "one-password-1" not in result.stdout and "pw-two-22" not in result.stdout
    entries = as_json(result)
    assert [(e["operation"], e["target"]) for e in entries] == [
        ("ban.lift", "192.0.2.7"),
        ("parent.set", "pm_one"),
        ("parent.create", "pm_two"),
        ("parent.create", "pm_one"),
    ]
    where = f"{getpass.getuser()}@{socket.gethostname()}"
    assert {(e["actor"], e["via"], e["client"]) for e in entries} == {("operator", "cli", where)}
    assert entries[1]["fields"] == {"monthly_limit": "9", "password": "(redacted)"}
    assert entries[3]["fields"]["password"] == "(redacted)" and entries[3]["owner"] == "pm_one"

    mine = as_json(run("admin", "audit", "--account", "pm_one", "--json"))
    assert [e["operation"] for e in mine] == ["parent.set", "parent.create"]
    later = entries[1]["time"]
    assert len(as_json(run("admin", "audit", "--since", later, "--json"))) >= 2
    assert as_json(run("admin", "audit", "--since", "2099-01-01", "--json")) == []
    table = run("admin", "audit", "--account", "pm_two")
    assert table.returncode == 0 and "parent.create" in table.stdout
    bad = run("admin", "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert json.loads(run("admin", "audit", "--limit", "1", "--json").stdout)[0]["operation"] == (
        "ban.lift"
    )
