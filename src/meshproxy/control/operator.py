"""What only the operator may do: parent accounts, their plans, billing days and limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meshproxy.config import Settings
from meshproxy.control import audit
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.billing import (
    MAX_BILLING_DAY,
    MIN_BILLING_DAY,
    billing_period,
    default_billing_day,
)
from meshproxy.domain.forms import ValidationError, clean_email, clean_password, clean_username
from meshproxy.domain.passwords import hash_password, random_password
from meshproxy.domain.units import bytes_to_gb
from meshproxy.store import Store
from meshproxy.store.errors import Conflict


class OperatorError(Exception):
    """An operator command that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class NewParent:
    account: AccountRecord
    password: str  # only its hash is stored
    generated: bool  # a random password the operator has not seen: show it once


def _check(clean: Any, value: str, what: str) -> Any:
    try:
        return clean(value)
    except ValidationError as error:
        raise OperatorError(f"{what}: {error.message}") from None


def _check_plan(settings: Settings, plan: str) -> None:
    if settings.plan(plan) is None:
        known = ", ".join(p.name for p in settings.plans)
        raise OperatorError(f"unknown plan {plan!r} (plans: {known})")


def _check_billing_day(day: int) -> None:
    if not MIN_BILLING_DAY <= day <= MAX_BILLING_DAY:
        raise OperatorError(f"billing day must be {MIN_BILLING_DAY}-{MAX_BILLING_DAY}")


def _check_limit(value: int, what: str) -> None:
    if value < 0:
        raise OperatorError(f"{what} must be 0 (no limit) or a positive number of GB")


def get_parent(store: Store, username: str) -> AccountRecord:
    account = store.accounts.get(username)
    if account is None:
        raise OperatorError(f"no account named {username!r}")
    if not account.is_parent:
        raise OperatorError(f"{username!r} is a sub-account of {account.parent_username!r}")
    return account


def create_parent(
    settings: Settings,
    store: Store,
    username: str,
    *,
    password: str | None = None,
    plan: str | None = None,
    billing_day: int | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> NewParent:
    """Create a parent account on a plan, authorized for the plan's default proxies."""
    now = now or datetime.now(UTC)
    username = _check(clean_username, username, "username")
    generated = not password
    password = _check(clean_password, password, "password") if password else random_password()
    plan = plan or settings.default_plan
    _check_plan(settings, plan)
    billing_day = billing_day or default_billing_day(now.date())
    _check_billing_day(billing_day)
    fields: dict[str, Any] = {}
    if email:
        fields["email"] = _check(clean_email, email, "email")
    plan_config = settings.plan(plan)
    assert plan_config is not None
    try:
        account = store.accounts.create(
            username,
            password_hash=hash_password(password),
            plan=plan,
            billing_day=billing_day,
            proxies=plan_config.default_proxies,
            now=now,
            **fields,
        )
    except Conflict:
        raise OperatorError(f"username {username!r} is already taken") from None
    audit.record(
        store,
        "parent.create",
        username,
        {"plan": plan, "billing_day": billing_day, "email": email, "password": password},
        actor=None,
        owner=account,
        now=now,
    )
    return NewParent(account=account, password=password, generated=generated)


def update_parent(
    settings: Settings,
    store: Store,
    username: str,
    *,
    plan: str | None = None,
    billing_day: int | None = None,
    monthly_limit: int | None = None,
    total_limit: int | None = None,
    password: str | None = None,
    active: bool | None = None,
) -> AccountRecord:
    get_parent(store, username)
    fields: dict[str, Any] = {}
    if plan is not None:
        _check_plan(settings, plan)
        fields["plan"] = plan
    if billing_day is not None:
        _check_billing_day(billing_day)
        fields["billing_day"] = billing_day
    if monthly_limit is not None:
        _check_limit(monthly_limit, "monthly limit")
        fields["monthly_limit_gb"] = monthly_limit
    if total_limit is not None:
        _check_limit(total_limit, "total limit")
        fields["total_limit_gb"] = total_limit
    if password is not None:
        fields["password_hash"] = hash_password(_check(clean_password, password, "password"))
    if active is not None:
        fields["active"] = active
    updated = store.accounts.update(username, **fields)
    if updated is None:
        raise OperatorError(f"no account named {username!r}")
    changed = {
        "plan": plan,
        "billing_day": billing_day,
        "monthly_limit": monthly_limit,
        "total_limit": total_limit,
        "password": password,
        "active": active,
    }
    audit.record(store, "parent.set", username, changed, actor=None, owner=updated)
    return updated


def delete_parent(store: Store, username: str) -> None:
    account = get_parent(store, username)
    store.accounts.delete(username)
    audit.record(store, "parent.delete", username, {}, actor=None, owner=account)


def lift_ban(store: Store, ip: str) -> None:
    """Lift an authentication-failure ban on a client IP (and its count of failures)."""
    if not store.bans.unban(ip):
        raise OperatorError(f"{ip} is not banned")
    audit.record(store, "ban.lift", ip, {}, actor=None, owner=None)


def account_summary(store: Store, account: AccountRecord, now: datetime) -> dict[str, Any]:
    """An account as the operator sees it: identity, plan, limits and usage in GB."""
    monthly, total = store.usage.of(account, now)
    summary: dict[str, Any] = {
        "username": account.username,
        "kind": "parent" if account.is_parent else "sub-account",
        "active": account.active,
        "monthly_bandwidth": bytes_to_gb(monthly),
        "monthly_bandwidth_limit": account.limits.monthly_gb,
        "total_bandwidth": bytes_to_gb(total),
        "total_bandwidth_limit": account.limits.total_gb,
        "created": account.created_at.isoformat(),
    }
    if account.is_parent:
        period = billing_period(account.billing_day or 1, now)
        summary.update(
            plan=account.plan,
            billing_day=account.billing_day,
            period_start=period.start.isoformat(),
            period_end=period.end.isoformat(),
            sub_accounts=store.accounts.count_sub_accounts(account.id),
            proxies=store.access.authorized_proxies(account),
        )
    else:
        summary["parent"] = account.parent_username
    for name in ("first_name", "last_name", "email"):
        value = getattr(account, name)
        if value:
            summary[name] = value
    return summary


FIRST_PARENT = "parent"


def seed_first_parent(settings: Settings, store: Store) -> NewParent | None:
    """On an empty store, create one parent account on the default plan (first run)."""
    if store.accounts.list(parents=True, limit=1):
        return None
    return create_parent(settings, store, FIRST_PARENT)
