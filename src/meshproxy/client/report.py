"""The reseller's billing run: every sub-account's usage against its limits, sorted, as rows
for a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from meshproxy.client.models import SubAccount
from meshproxy.client.numbers import gb_text, gigabytes


@dataclass(frozen=True)
class UsageRow:
    username: str
    active: bool
    monthly_gb: float
    monthly_limit_gb: int  # 0 = no limit
    monthly_percent: float | None  # of the limit; None without one
    total_gb: float
    total_limit_gb: int
    total_percent: float | None
    over_limit: bool  # a limit is reached: the proxies answer 509

    @classmethod
    def of(cls, account: SubAccount) -> UsageRow:
        return cls(
            username=account.username,
            active=account.active,
            monthly_gb=gigabytes(account.monthly_bandwidth),
            monthly_limit_gb=account.monthly_bandwidth_limit,
            monthly_percent=_percent(account.monthly_bandwidth, account.monthly_bandwidth_limit),
            total_gb=gigabytes(account.total_bandwidth),
            total_limit_gb=account.total_bandwidth_limit,
            total_percent=_percent(account.total_bandwidth, account.total_bandwidth_limit),
            over_limit=account.over_limit,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRow))
GB_COLUMNS = ("monthly_gb", "total_gb")


def _percent(used: float, limit: int) -> float | None:
    return None if limit == 0 else round(100.0 * used / limit, 2)


# Usage sorts put the biggest first (what a billing run looks at); ties go by username.
SORTS: dict[str, Callable[[UsageRow], Any]] = {
    "username": lambda row: row.username,
    "monthly": lambda row: (-row.monthly_gb, row.username),
    "total": lambda row: (-row.total_gb, row.username),
    "monthly-percent": lambda row: (-(row.monthly_percent or 0.0), row.username),
    "total-percent": lambda row: (-(row.total_percent or 0.0), row.username),
}


def usage_rows(accounts: Iterable[SubAccount], sort: str = "monthly") -> list[UsageRow]:
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    return sorted((UsageRow.of(account) for account in accounts), key=SORTS[sort])


def totals(rows: Sequence[UsageRow]) -> dict[str, float | int]:
    """Sums for the bottom line of a bill: GB this period and overall, accounts counted."""
    return {
        "sub_accounts": len(rows),
        "monthly_gb": gigabytes(sum(row.monthly_gb for row in rows)),
        "total_gb": gigabytes(sum(row.total_gb for row in rows)),
        "over_limit": sum(1 for row in rows if row.over_limit),
    }


def to_csv(rows: Iterable[UsageRow]) -> str:
    """CSV with a header; GB in fixed notation (gb_text: 0.000000742, never 7.42e-07),
    no-limit percentages as empty cells, booleans true/false."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(_csv_cell(column, getattr(row, column)) for column in COLUMNS)
    return out.getvalue()


# A text cell a spreadsheet would read as a formula gets a leading quote (CSV injection;
# usernames may start with + - @). The dashboard's export does the same (web/spreadsheet.py;
# the client imports nothing server-side).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column in GB_COLUMNS:
        return gb_text(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return str(value)
