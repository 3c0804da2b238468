"""Who moved bytes count for: an account's bytes also count for its parent (one level).

Every counter follows this one rule: the in-process and Redis meters, the store's usage
rows and the data plane's live figures (tests/domain/test_usage.py runs them all)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from meshproxy.domain.accounts import UsageDelta

T = TypeVar("T")


def counted_for(account: T, parent: T | None, nbytes: int) -> tuple[T, ...]:
    """The accounts `nbytes` moved by `account` count for: itself and its parent, if it has
    one. No bytes (or a negative count, which no counter makes) count for nobody."""
    if nbytes <= 0:
        return ()
    return (account,) if parent is None else (account, parent)


def bytes_per_account(deltas: Iterable[UsageDelta]) -> dict[int, int]:
    """Bytes per account id over `deltas`, by `counted_for`."""
    totals: dict[int, int] = {}
    for delta in deltas:
        for account_id in counted_for(delta.account_id, delta.parent_id, delta.nbytes):
            totals[account_id] = totals.get(account_id, 0) + delta.nbytes
    return totals
