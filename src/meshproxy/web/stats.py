"""Request statistics on an account's page: a chart of the last days' requests stacked
by outcome, the same numbers as a table, and the window's top destination hosts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup

from meshproxy.control.stats import every_day, window
from meshproxy.domain import stats as s
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.stats import DayStats
from meshproxy.store import Store
from meshproxy.web.charts import OTHERS_COLOUR, PALETTE, Series, daily_chart

DAYS = 30
TOP_HOSTS = 10

# Outcome columns as the page names them, in the chart's stacking order.
OUTCOME_LABELS = (
    (s.ORIGIN_2XX, "origin 2xx"),
    (s.ORIGIN_3XX, "origin 3xx"),
    (s.TUNNELS, "tunnels"),
    (s.ORIGIN_4XX, "origin 4xx"),
    (s.ORIGIN_5XX, "origin 5xx"),
    (s.PROXY_4XX, "proxy 4xx"),
    (s.PROXY_5XX, "proxy 5xx"),
    (s.ABORTED, "aborted"),
)
_COLOURS = (*PALETTE, OTHERS_COLOUR)


@dataclass(frozen=True)
class StatsView:
    title: str
    svg: Markup
    series: list[Series]
    days: list[DayStats]  # newest first, days with requests only (the table)
    hosts: list[tuple[str, int]]  # the window's top hosts by bytes
    requests: int

    labels = OUTCOME_LABELS


def stats_view(store: Store, account: AccountRecord, now: datetime, days: int = DAYS) -> StatsView:
    start, end = window(now, days)
    every = every_day(store, account, start, end)
    series = [
        Series(label, [day.get(name) for day in every], colour)
        for (name, label), colour in zip(OUTCOME_LABELS, _COLOURS, strict=True)
    ]
    title = f"Requests by outcome, last {days} days"
    dates = [date.fromisoformat(day.day) for day in every]
    svg = daily_chart(
        "chart-requests", title, dates, series, value_text=str, what="Daily requests"
    )
    hosts: dict[str, int] = {}
    for day in every:
        for host, nbytes in day.hosts:
            hosts[host] = hosts.get(host, 0) + nbytes
    top = sorted(hosts.items(), key=lambda item: (-item[1], item[0]))[:TOP_HOSTS]
    return StatsView(
        title=title,
        svg=svg,
        series=series,
        days=[day for day in reversed(every) if day.get(s.REQUESTS)],
        hosts=top,
        requests=sum(day.get(s.REQUESTS) for day in every),
    )
