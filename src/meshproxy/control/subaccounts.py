"""Sub-account operations: create, edit, get, deactivate, activate, delete, list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meshproxy.config import Settings
from meshproxy.control.common import (
    caller_plan,
    change,
    operation,
    own_sub_account,
    validated,
)
from meshproxy.control.errors import FormInvalid, NotFound, PaymentRequired
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import PageForm, SubAccountEditForm, SubAccountForm, UsernameForm
from meshproxy.domain.passwords import hash_password
from meshproxy.domain.units import bytes_to_gb
from meshproxy.store import Store
from meshproxy.store.errors import Conflict, LimitReached

USERNAME_TAKEN = "A user with that username already exists."
DEFAULT_PAGE = 100
_OPTIONAL_TEXT = ("first_name", "last_name", "email")


def sub_account_details(
    account: AccountRecord, monthly_bytes: int, total_bytes: int
) -> dict[str, Any]:
    """The spec's sub-account details object (names and email only when set)."""
    details: dict[str, Any] = {
        "username": account.username,
        "active": account.active,
        "monthly_bandwidth": bytes_to_gb(monthly_bytes),
        "monthly_bandwidth_limit": account.limits.monthly_gb,
        # The spec promises total >= monthly; hold it even mid-flush.
        "total_bandwidth": bytes_to_gb(max(total_bytes, monthly_bytes)),
        "total_bandwidth_limit": account.limits.total_gb,
    }
    for name in _OPTIONAL_TEXT:
        value = getattr(account, name)
        if value:
            details[name] = value
    return details


def _details(store: Store, account: AccountRecord, now: datetime) -> dict[str, Any]:
    return sub_account_details(account, *store.usage.of(account, now))


def _store_fields(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """Cleaned form values -> account columns; only what the request carried."""
    fields: dict[str, Any] = {}
    if "password" in cleaned:
        fields["password_hash"] = hash_password(cleaned["password"])
    for name in _OPTIONAL_TEXT:
        if name in cleaned:
            fields[name] = cleaned[name] or None  # empty clears
    if "monthly_limit" in cleaned:
        fields["monthly_limit_gb"] = cleaned["monthly_limit"]
    if "total_limit" in cleaned:
        fields["total_limit_gb"] = cleaned["total_limit"]
    return fields


@change("sub.create")
def create_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    cleaned = validated(SubAccountForm, data)
    plan = caller_plan(settings, caller)
    try:
        # The plan's count is checked in the transaction that inserts (first: a full plan
        # is 402 even when the username is taken too), so racing creates cannot overshoot.
        account = store.accounts.create(
            cleaned["username"],
            parent_id=caller.id,
            now=now,
            max_siblings=plan.max_sub_accounts,
            **_store_fields(cleaned),
        )
    except LimitReached:
        raise PaymentRequired(
            f"Your plan allows {plan.max_sub_accounts} sub-accounts. "
            "Upgrade your plan or delete sub-accounts to add more."
        ) from None
    except Conflict:
        raise FormInvalid.one("username", USERNAME_TAKEN) from None
    return sub_account_details(account, 0, 0)


@change("sub.edit")
def edit_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    cleaned = validated(SubAccountEditForm, data)
    account = own_sub_account(store, caller, cleaned["username"])
    fields = _store_fields(cleaned)
    if fields:
        updated = store.accounts.update(account.username, **fields)
        if updated is None:  # deleted meanwhile
            raise NotFound("Sub-account not found.")
        account = updated
    return _details(store, account, now)


@operation
def get_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    cleaned = validated(UsernameForm, data)
    return _details(store, own_sub_account(store, caller, cleaned["username"]), now)


def _set_active(
    store: Store, caller: AccountRecord, data: Mapping[str, str], active: bool, now: datetime
) -> dict[str, Any]:
    cleaned = validated(UsernameForm, data)
    account = own_sub_account(store, caller, cleaned["username"])
    updated = store.accounts.update(account.username, active=active)
    if updated is None:
        raise NotFound("Sub-account not found.")
    return _details(store, updated, now)


@change("sub.deactivate")
def deactivate_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    return _set_active(store, caller, data, False, now)


@change("sub.activate")
def activate_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    return _set_active(store, caller, data, True, now)


@change("sub.delete")
def delete_sub_account(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> None:
    cleaned = validated(UsernameForm, data)
    account = own_sub_account(store, caller, cleaned["username"])
    store.accounts.delete(account.username)


@operation
def list_sub_accounts(
    settings: Settings,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    *,
    now: datetime,
) -> dict[str, Any]:
    """meshproxy's extension: one page of the caller's sub-accounts, by username."""
    cleaned = validated(PageForm, data)
    offset = cleaned.get("offset", 0)
    limit = cleaned.get("limit", DEFAULT_PAGE)
    accounts = store.accounts.list(parent_id=caller.id, offset=offset, limit=limit)
    usage = store.usage.of_many(accounts, now)
    return {
        "sub_accounts": [sub_account_details(a, *usage.get(a.id, (0, 0))) for a in accounts],
        "total": store.accounts.count_sub_accounts(caller.id),
        "offset": offset,
        "limit": limit,
    }
