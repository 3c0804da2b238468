"""CSV export of daily usage per sub-account for a chosen period: what a reseller bills
from. The current or previous billing period, or any range of days up to a year. The same
period's request statistics (domain/stats.py) are a second file, one line per account
(the parent's own requests too) and day with requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from starlette.responses import Response

from meshproxy.domain.billing import BillingPeriod, billing_period
from meshproxy.domain.forms import NON_FIELD_ERRORS, REQUIRED
from meshproxy.domain.stats import BYTES, OUTCOMES, REQUESTS, DayStats
from meshproxy.domain.units import bytes_to_gb, gb_text
from meshproxy.web.context import Ctx
from meshproxy.web.pages.common import FormErrors
from meshproxy.web.spreadsheet import csv_text
from meshproxy.web.usage import period_text

MAX_DAYS = 366
CSV_HEADER = ("username", "date", "bytes", "gigabytes")
STATS_HEADER = ("username", "date", REQUESTS, *OUTCOMES, BYTES, "top_hosts")
TOP_HOSTS = 10  # in the file's last column, as "host=bytes" separated by spaces


@dataclass(frozen=True)
class ExportChoice:
    period: BillingPeriod | None
    errors: FormErrors


def _date(text: str, field: str, errors: FormErrors) -> date | None:
    if not text.strip():
        errors[field] = [REQUIRED]
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors[field] = ["Enter a valid date (YYYY-MM-DD)."]
        return None


def choose_period(ctx: Ctx) -> ExportChoice:
    current = billing_period(ctx.user.billing_day or 1, ctx.now)
    which = ctx.query.get("period", "current")
    if which == "current":
        return ExportChoice(current, {})
    if which == "previous":
        return ExportChoice(current.previous(), {})
    errors: FormErrors = {}
    if which != "custom":
        return ExportChoice(None, {"period": ["Select a valid choice."]})
    start = _date(ctx.query.get("start", ""), "start", errors)
    last = _date(ctx.query.get("end", ""), "end", errors)
    if start is None or last is None:
        return ExportChoice(None, errors)
    if last < start:
        return ExportChoice(None, {"end": ["The last day must not be before the first."]})
    if (last - start).days >= MAX_DAYS:
        return ExportChoice(None, {NON_FIELD_ERRORS: [f"Choose at most {MAX_DAYS} days."]})
    return ExportChoice(BillingPeriod(start=start, end=last + timedelta(days=1)), {})


def _page(ctx: Ctx, errors: FormErrors, status: int = 200) -> Response:
    current = billing_period(ctx.user.billing_day or 1, ctx.now)
    return ctx.render(
        "export.html",
        status=status,
        errors=errors,
        values=ctx.query,
        current=period_text(current),
        previous=period_text(current.previous()),
        top_hosts=TOP_HOSTS,
    )


def export(ctx: Ctx) -> Response:
    return _page(ctx, {})


def usage_csv(ctx: Ctx) -> Response:
    choice = choose_period(ctx)
    if choice.period is None:
        return _page(ctx, choice.errors, status=400)
    period = choice.period
    rows = ctx.store.usage.sub_account_daily(ctx.user.id, period.start, period.end)
    text = csv_text(
        CSV_HEADER,
        (
            (username, day.isoformat(), nbytes, gb_text(bytes_to_gb(nbytes)))
            for _, username, day, nbytes in rows
        ),
    )
    return _csv_file(text, "usage", ctx.user.username, period)


def _stats_row(username: str, stats: DayStats) -> tuple[str | int, ...]:
    hosts = " ".join(f"{host}={nbytes}" for host, nbytes in stats.hosts[:TOP_HOSTS])
    return (
        username,
        stats.day,
        stats.get(REQUESTS),
        *(stats.get(name) for name in OUTCOMES),
        stats.get(BYTES),
        hosts,
    )


def stats_csv(ctx: Ctx) -> Response:
    choice = choose_period(ctx)
    if choice.period is None:
        return _page(ctx, choice.errors, status=400)
    period = choice.period
    rows = ctx.store.stats.tree_daily(ctx.user.id, period.start, period.end)
    text = csv_text(STATS_HEADER, (_stats_row(username, stats) for username, stats in rows))
    return _csv_file(text, "requests", ctx.user.username, period)


def _csv_file(text: str, what: str, username: str, period: BillingPeriod) -> Response:
    last = period.end - timedelta(days=1)
    filename = f"{what}-{username}-{period.start}-to-{last}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_safe(filename)}"'},
    )


def _safe(filename: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@+" else "_" for c in filename)
