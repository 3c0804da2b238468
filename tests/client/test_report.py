"""The billing run's rows: usage against limits, sorted, as CSV."""

from __future__ import annotations

import csv
import io

import pytest

from meshproxy.client import SubAccount
from meshproxy.client.report import to_csv, totals, usage_rows

ACCOUNTS = [
    SubAccount("pm_b", True, 4.0, 5, 10.0, 0),
    SubAccount("pm_a", True, 4.0, 0, 4.0, 8),
    SubAccount("pm_c", False, 6.0, 6, 6.0, 0),
]


def test_limits_and_percentages() -> None:
    rows = {row.username: row for row in usage_rows(ACCOUNTS)}
    assert rows["pm_b"].monthly_percent == 80.0 and rows["pm_b"].total_percent is None
    assert rows["pm_a"].monthly_percent is None and rows["pm_a"].total_percent == 50.0
    assert rows["pm_c"].over_limit and not rows["pm_b"].over_limit


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("monthly", ["pm_c", "pm_a", "pm_b"]),
        ("total", ["pm_b", "pm_c", "pm_a"]),
        ("username", ["pm_a", "pm_b", "pm_c"]),
        ("monthly-percent", ["pm_c", "pm_b", "pm_a"]),
    ],
)
def test_sorts(sort: str, order: list[str]) -> None:
    assert [row.username for row in usage_rows(ACCOUNTS, sort)] == order


def test_unknown_sort() -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        usage_rows(ACCOUNTS, "random")


def test_csv_and_totals() -> None:
    rows = usage_rows(ACCOUNTS, "username")
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0] == {
        "username": "pm_a", "active": "true", "monthly_gb": "4.000000000",
        "monthly_limit_gb": "0", "monthly_percent": "", "total_gb": "4.000000000",
        "total_limit_gb": "8",
        "total_percent": "50.0", "over_limit": "false",
    }
    assert totals(rows) == {"sub_accounts": 3, "monthly_gb": 14.0, "total_gb": 20.0,
                            "over_limit": 1}


def test_csv_cells_spreadsheets_would_run_are_quoted() -> None:
    accounts = [SubAccount(name, True, 1.0, 0, 1.0, 0) for name in ("+pm", "-pm", "@pm", "pm")]
    parsed = list(csv.DictReader(io.StringIO(to_csv(usage_rows(accounts, "username")))))
    assert sorted(row["username"] for row in parsed) == ["'+pm", "'-pm", "'@pm", "pm"]
    assert {row["monthly_gb"] for row in parsed} == {"1.000000000"}  # numbers unquoted
