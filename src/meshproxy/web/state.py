"""What the proxies do with an account right now, as the dashboard's badge says it: serve it,
refuse it as deactivated (402), or refuse it over a limit (509) — its own or its parent's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.limits import Usage, check_quota
from meshproxy.store import Store


@dataclass(frozen=True)
class AccountState:
    label: str  # the badge: "Active", "Deactivated", "Over limit, 509"
    css: str  # its class: "" (green), "inactive" (red), "over" (red)
    why: str  # a sentence for the hint and the badge's title


ACTIVE = AccountState("Active", "", "The proxies serve it.")
DEACTIVATED = AccountState(
    "Deactivated", "inactive", "Deactivated: the proxies answer its requests with 402."
)


def account_state(
    account: AccountRecord,
    usage: Usage,
    parent: AccountRecord | None = None,
    parent_usage: Usage | None = None,
) -> AccountState:
    """Deactivation first (402 comes before any quota), then the limits the proxies check."""
    if not account.active:
        return DEACTIVATED
    over = check_quota(
        usage,
        account.limits,
        parent_usage if parent is not None else None,
        parent.limits if parent is not None else None,
    )
    if over is None:
        return ACTIVE
    return AccountState(
        "Over limit, 509", "over", f"{over.reason().capitalize()}: the proxies answer 509."
    )


def usage_now(store: Store, account: AccountRecord, now: datetime) -> Usage:
    return Usage(*store.usage.of(account, now))


def sub_account_state(
    store: Store, sub: AccountRecord, usage: Usage, parent: AccountRecord, now: datetime
) -> AccountState:
    return account_state(sub, usage, parent, usage_now(store, parent, now))
