"""What an account is, as every layer sees it (the store returns these; nothing mutates them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from meshproxy.domain.limits import Limits


@dataclass(frozen=True)
class AccountRecord:
    id: int
    username: str
    parent_id: int | None
    password_hash: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    active: bool
    limits: Limits
    plan: str | None  # parents only
    billing_day: int | None  # parents only
    created_at: datetime
    parent_username: str | None = None
    # Dashboard sessions carry it; raising it ends every one of them (logout everywhere).
    session_epoch: int = 0

    @property
    def is_parent(self) -> bool:
        return self.parent_id is None


@dataclass(frozen=True)
class UsageDelta:
    """Bytes an account moved, to be added to its usage and its parent's."""

    account_id: int
    parent_id: int | None
    nbytes: int


@dataclass(frozen=True)
class AccountView:
    """Everything a proxy node needs to decide about one account's traffic."""

    account: AccountRecord
    ips: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    proxies: tuple[str, ...] = field(default=())  # authorized proxies (of the parent)
    monthly_bytes: int = 0
    total_bytes: int = 0
    folded_bytes: int = 0  # of total_bytes, those folded in from shared (Redis) counters
    # The hostnames' row ids, in the order of `hostnames`: the order they were added in
    # over all accounts (an address two accounts' hostnames share is the earlier one's).
    hostname_ids: tuple[int, ...] = ()
