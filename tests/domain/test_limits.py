from __future__ import annotations

from meshproxy.domain.limits import Limits, QuotaExceeded, QuotaKind, Usage, check_quota, exceeded
from meshproxy.domain.units import GB, bytes_to_gb


def test_zero_means_no_limit() -> None:
    assert exceeded(Usage(10**15, 10**15), Limits(0, 0)) is None


def test_reaching_a_limit_counts_as_over() -> None:
    assert exceeded(Usage(GB - 1, GB - 1), Limits(1, 0)) is None
    assert exceeded(Usage(GB, GB), Limits(1, 0)) is QuotaKind.MONTHLY
    assert exceeded(Usage(0, 5 * GB), Limits(0, 5)) is QuotaKind.TOTAL


def test_total_reported_before_monthly() -> None:
    assert exceeded(Usage(9 * GB, 9 * GB), Limits(1, 2)) is QuotaKind.TOTAL


def test_parent_limits_cover_sub_accounts() -> None:
    verdict = check_quota(Usage(0, 0), Limits(), Usage(3 * GB, 3 * GB), Limits(monthly_gb=3))
    assert verdict == QuotaExceeded(QuotaKind.MONTHLY, of_parent=True)
    assert "parent" in verdict.reason()
    assert check_quota(Usage(2 * GB, 2 * GB), Limits(1), Usage(), Limits()) == QuotaExceeded(
        QuotaKind.MONTHLY, of_parent=False
    )
    assert check_quota(Usage(), Limits(1), Usage(), Limits(1)) is None


def test_gb_floats() -> None:
    assert bytes_to_gb(1) == 1e-9
    assert bytes_to_gb(1_500_000_000) == 1.5
