"""Quota checks for an account and its parent. Limits are whole GB; 0 means no limit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from meshproxy.domain.units import GB


class QuotaKind(StrEnum):
    MONTHLY = "monthly"
    TOTAL = "total"


@dataclass(frozen=True)
class Limits:
    monthly_gb: int = 0
    total_gb: int = 0


@dataclass(frozen=True)
class Usage:
    monthly_bytes: int = 0
    total_bytes: int = 0


@dataclass(frozen=True)
class QuotaExceeded:
    kind: QuotaKind
    of_parent: bool

    def reason(self) -> str:
        whose = "parent account" if self.of_parent else "account"
        return f"{self.kind.value} bandwidth limit of the {whose} reached"


def exceeded(usage: Usage, limits: Limits) -> QuotaKind | None:
    """Which limit, if any, the usage has reached (reaching a limit counts as over it)."""
    if limits.total_gb and usage.total_bytes >= limits.total_gb * GB:
        return QuotaKind.TOTAL
    if limits.monthly_gb and usage.monthly_bytes >= limits.monthly_gb * GB:
        return QuotaKind.MONTHLY
    return None


def check_quota(
    usage: Usage,
    limits: Limits,
    parent_usage: Usage | None = None,
    parent_limits: Limits | None = None,
) -> QuotaExceeded | None:
    """The account's own limits first, then its parent's (which cover all its sub-accounts)."""
    kind = exceeded(usage, limits)
    if kind is not None:
        return QuotaExceeded(kind, of_parent=False)
    if parent_usage is not None and parent_limits is not None:
        kind = exceeded(parent_usage, parent_limits)
        if kind is not None:
            return QuotaExceeded(kind, of_parent=True)
    return None
