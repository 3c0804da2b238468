"""Billing periods: monthly usage resets at 00:00 UTC on the parent's billing day (1-28)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

MIN_BILLING_DAY = 1
MAX_BILLING_DAY = 28  # every month has a 28th, so a period start never needs clamping


def default_billing_day(created: date) -> int:
    return min(created.day, MAX_BILLING_DAY)


@dataclass(frozen=True)
class BillingPeriod:
    start: date  # inclusive, 00:00 UTC
    end: date  # exclusive, 00:00 UTC

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def previous(self) -> BillingPeriod:
        return BillingPeriod(start=_add_months(self.start, -1), end=self.start)

    def start_datetime(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    def end_datetime(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def billing_period(billing_day: int, now: datetime) -> BillingPeriod:
    """The period that contains `now` (an aware datetime; converted to UTC)."""
    if not MIN_BILLING_DAY <= billing_day <= MAX_BILLING_DAY:
        raise ValueError(f"billing day must be {MIN_BILLING_DAY}-{MAX_BILLING_DAY}")
    today = now.astimezone(UTC).date()
    start = today.replace(day=billing_day)
    if today.day < billing_day:
        start = _add_months(start, -1)
    return BillingPeriod(start=start, end=_add_months(start, 1))
