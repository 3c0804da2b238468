"""Request statistics per account and day (domain/stats.py) as the API, the dashboard and
the CSV export give them: every day of the window, days without requests as zeros."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from meshproxy.config import Settings
from meshproxy.control.common import operation, target_account, validated
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import StatsForm
from meshproxy.domain.stats import COUNTERS, DayStats, day_stats
from meshproxy.store import Store

DEFAULT_DAYS = 30


def window(now: datetime, days: int) -> tuple[date, date]:
    """[start, end) of the `days` days up to and including today (UTC)."""
    end = now.date() + timedelta(days=1)
    return end - timedelta(days=days), end


def every_day(store: Store, account: AccountRecord, start: date, end: date) -> list[DayStats]:
    """The account's figures of each day in [start, end), zeros where it had none."""
    found = {stats.day: stats for stats in store.stats.daily(account.id, start, end)}
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    return [found.get(d.isoformat()) or day_stats(d.isoformat(), ()) for d in days]


def day_json(stats: DayStats) -> dict[str, Any]:
    return {
        "day": stats.day,
        **{name: stats.get(name) for name in COUNTERS},
        "hosts": [{"host": host, "bytes": nbytes} for host, nbytes in stats.hosts],
    }


@operation
def account_stats(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    """meshproxy's extension: the caller's own (or a sub-account's) daily statistics."""
    cleaned = validated(StatsForm, data)
    account = target_account(store, caller, cleaned.get("username"))
    start, end = window(now, cleaned.get("days", DEFAULT_DAYS))
    return {
        "username": account.username,
        "days": [day_json(stats) for stats in every_day(store, account, start, end)],
    }
