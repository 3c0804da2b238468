"""GB figures: fixed notation with 9 decimals (one byte), never an exponent, in every output
a person or a spreadsheet reads: the API's JSON, the dashboard's CSV (tests/web), the
client's values, its report CSV and totals, and `meshproxy api` (tables and --json)."""

from __future__ import annotations

import csv
import io
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from meshproxy.client import SubAccount
from meshproxy.client.numbers import Gigabytes, gb_text
from meshproxy.client.report import to_csv, totals, usage_rows
from meshproxy.domain import units

from .conftest import PASSWORD, LiveApi, unique

EXPONENT = re.compile(r"\d[eE][+-]?\d")
# Byte counts whose GB figure Python writes with an exponent or a float's drift.
AWKWARD_BYTES = [0, 1, 7, 742, 2432, 99_999, 1_176_023_394, 10**9, 123_456_789_012_345]


def gb(nbytes: int) -> float:
    return units.bytes_to_gb(nbytes)


def test_client_and_server_write_the_same_figure() -> None:
    for nbytes in [*AWKWARD_BYTES, *range(0, 10**6, 997), *range(0, 10**15, 10**12 + 7)]:
        text = units.gb_text(gb(nbytes))
        assert gb_text(gb(nbytes)) == text
        assert not EXPONENT.search(text) and len(text.partition(".")[2]) == 9
        assert float(text) == gb(nbytes)


def test_rule() -> None:
    assert gb_text(2.432e-06) == "0.000002432"
    assert gb_text(1.1760233940000002) == "1.176023394"
    assert gb_text(-1e-12) == "0.000000000"  # no "-0"
    assert units.gb_text(7.42e-07) == "0.000000742"


def test_values_tables_and_sums_of_the_client() -> None:
    tiny = SubAccount("pm_tiny", True, 7.42e-07, 0, 2.432e-06, 5)
    drift = SubAccount("pm_drift", True, 0.1 + 0.2, 1, 1.1760233940000002, 0)
    assert isinstance(tiny.monthly_bandwidth, Gigabytes)
    assert str(tiny.monthly_bandwidth) == "0.000000742"
    assert f"{tiny.total_bandwidth}" == "0.000002432"
    assert "monthly_bandwidth=0.300000000" in repr(drift) and "1.176023394" in repr(drift)
    assert str(tiny.total_remaining) == "4.999997568"
    rows = usage_rows([tiny, drift])
    assert str(totals(rows)) == (
        "{'sub_accounts': 2, 'monthly_gb': 0.300000742, 'total_gb': 1.176025826, 'over_limit': 0}"
    )
    text = to_csv(rows)
    assert not EXPONENT.search(text)
    cells = {row["username"]: row for row in csv.DictReader(io.StringIO(text))}
    assert cells["pm_tiny"]["monthly_gb"] == "0.000000742"
    assert cells["pm_tiny"]["total_gb"] == "0.000002432"
    assert cells["pm_drift"]["total_gb"] == "1.176023394"


def test_every_output_of_a_live_account(
    live_api: LiveApi, parent: str, tmp_path: Path
) -> None:
    name = unique("pm_small")
    with live_api.client(parent) as api:
        api.create_sub_account(name)
        live_api.use(name, 2.432e-06)
        raw = httpx.get(
            f"{live_api.url}/api/sub/get/",
            params={"username": name},
            auth=(parent, PASSWORD),
            verify=ssl.create_default_context(cafile=live_api.cert),
        )
        account = api.get_sub_account(name)
        listed = api.list_sub_accounts().sub_accounts
    # The API's JSON: a plain JSON number, written in fixed notation.
    assert '"monthly_bandwidth":0.000002432' in raw.text
    assert '"total_bandwidth":0.000002432' in raw.text and not EXPONENT.search(raw.text)
    assert json.loads(raw.text)["monthly_bandwidth"] == 2.432e-06
    assert str(account.monthly_bandwidth) == "0.000002432"
    assert [str(a.total_bandwidth) for a in listed] == ["0.000002432"]
    assert "0.000002432" in to_csv(usage_rows([account]))
    cli = [sys.executable, "-m", "meshproxy", "api", "--api-url", live_api.url, "--api-user",
           parent, "--api-password", PASSWORD, "--ca-file", str(live_api.cert)]
    env = {"COLUMNS": "200", "XDG_CONFIG_HOME": str(tmp_path)}
    shown = subprocess.run(
        [*cli, "sub", "get", name], capture_output=True, text=True, timeout=60, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "0.000002432" in shown.stdout and not EXPONENT.search(shown.stdout)
    as_json = subprocess.run(
        [*cli, "sub", "get", name, "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert '"monthly_bandwidth": 0.000002432' in as_json.stdout, as_json.stdout
    report = subprocess.run(
        [*cli, "usage-report", "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert '"monthly_gb": 0.000002432' in report.stdout and not EXPONENT.search(report.stdout)
