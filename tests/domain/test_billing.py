from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from meshproxy.domain.billing import BillingPeriod, billing_period, default_billing_day


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_period_starts_on_billing_day() -> None:
    assert billing_period(10, at(2026, 3, 10)) == BillingPeriod(
        date(2026, 3, 10), date(2026, 4, 10)
    )
    assert billing_period(10, at(2026, 3, 9, 23)) == BillingPeriod(
        date(2026, 2, 10), date(2026, 3, 10)
    )


def test_year_boundary() -> None:
    assert billing_period(15, at(2027, 1, 3)) == BillingPeriod(
        date(2026, 12, 15), date(2027, 1, 15)
    )
    assert billing_period(1, at(2026, 12, 31)) == BillingPeriod(date(2026, 12, 1), date(2027, 1, 1))


@pytest.mark.parametrize("year", [2027, 2028])  # 2028 is a leap year
def test_billing_day_28_in_february(year: int) -> None:
    period = billing_period(28, at(year, 3, 1))
    assert period == BillingPeriod(date(year, 2, 28), date(year, 3, 28))
    assert period.contains(date(year, 2, 29) if year == 2028 else date(year, 3, 1))


def test_times_are_taken_in_utc() -> None:
    # 00:30 on the 10th in UTC+2 is still the 9th in UTC.
    local = datetime(2026, 3, 10, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert billing_period(10, local).start == date(2026, 2, 10)


def test_previous_period_and_datetimes() -> None:
    period = billing_period(5, at(2026, 1, 20))
    assert period.previous() == BillingPeriod(date(2025, 12, 5), date(2026, 1, 5))
    assert period.start_datetime() == at(2026, 1, 5)
    assert period.end_datetime() == at(2026, 2, 5)


@pytest.mark.parametrize("day", [0, 29, 31, -1])
def test_billing_day_out_of_range(day: int) -> None:
    with pytest.raises(ValueError, match="billing day"):
        billing_period(day, at(2026, 1, 1))


def test_default_billing_day_is_creation_day_capped_at_28() -> None:
    assert default_billing_day(date(2026, 1, 12)) == 12
    assert default_billing_day(date(2026, 1, 31)) == 28
