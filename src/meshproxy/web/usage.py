"""Usage as the dashboard shows it: an account's billing periods, daily charts for the
current and previous ones, and a parent's top sub-accounts stacked over its whole usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup

from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.billing import BillingPeriod, billing_period
from meshproxy.store import Store
from meshproxy.web.charts import OTHERS_COLOUR, PALETTE, Series, daily_chart

TOP_SUB_ACCOUNTS = 5


def days_of(period: BillingPeriod) -> list[date]:
    count = (period.end - period.start).days
    return [period.start + timedelta(days=i) for i in range(count)]


def period_text(period: BillingPeriod) -> str:
    """`2026-11-10 to 2026-12-09`: both days included."""
    return f"{period.start} to {period.end - timedelta(days=1)}"


def _per_day(days: list[date], rows: list[tuple[date, int]]) -> list[int]:
    index = {day: i for i, day in enumerate(days)}
    values = [0] * len(days)
    for day, nbytes in rows:
        if day in index:
            values[index[day]] += nbytes
    return values


@dataclass(frozen=True)
class PeriodChart:
    period: BillingPeriod
    title: str
    days: list[date]
    series: list[Series]
    svg: Markup

    @property
    def total(self) -> int:
        return sum(sum(s.values) for s in self.series)

    def rows(self) -> list[tuple[date, list[int]]]:
        """The chart's numbers as table rows: (day, value per series)."""
        return [(day, [s.values[i] for s in self.series]) for i, day in enumerate(self.days)]


def _chart(chart_id: str, title: str, period: BillingPeriod, series: list[Series]) -> PeriodChart:
    days = days_of(period)
    svg = daily_chart(chart_id, title, days, series)
    return PeriodChart(period=period, title=title, days=days, series=series, svg=svg)


def billing_day_of(store: Store, account: AccountRecord) -> int:
    """The billing day that rules the account's periods (a sub-account's parent's)."""
    if account.is_parent:
        return account.billing_day or 1
    parent = store.accounts.get(account.parent_username or "")
    return (parent.billing_day if parent else None) or 1


def period_charts(store: Store, account: AccountRecord, now: datetime) -> list[PeriodChart]:
    """The current and the previous billing period's daily usage of one account."""
    current = billing_period(billing_day_of(store, account), now)
    previous = current.previous()
    rows = store.usage.daily(account.id, previous.start, current.end)
    charts = []
    for name, period in (("current", current), ("previous", previous)):
        title = f"{name.capitalize()} billing period, {period_text(period)}"
        values = _per_day(days_of(period), [(d, b) for d, b in rows if period.contains(d)])
        charts.append(_chart(f"chart-{name}", title, period, [Series("usage", values)]))
    return charts


def top_sub_accounts_chart(store: Store, parent: AccountRecord, now: datetime) -> PeriodChart:
    """The parent's daily usage this period: its top sub-accounts stacked, then the rest
    (the parent's own traffic and every other sub-account)."""
    period = billing_period(parent.billing_day or 1, now)
    days = days_of(period)
    top = store.usage.top_sub_accounts(parent.id, period.start, period.end, TOP_SUB_ACCOUNTS)
    rows = store.usage.sub_account_daily(
        parent.id, period.start, period.end, account_ids=[account_id for account_id, _, _ in top]
    )
    series = []
    for index, (account_id, username, _) in enumerate(top):
        mine = [(day, nbytes) for who, _, day, nbytes in rows if who == account_id]
        series.append(Series(username, _per_day(days, mine), PALETTE[index % len(PALETTE)]))
    whole = _per_day(days, store.usage.daily(parent.id, period.start, period.end))
    rest = [max(0, total - sum(s.values[i] for s in series)) for i, total in enumerate(whole)]
    series.append(Series("everything else", rest, OTHERS_COLOUR))
    title = f"Top sub-accounts, {period_text(period)}"
    return _chart("chart-top", title, period, series)
