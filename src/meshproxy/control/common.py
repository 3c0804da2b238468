"""What every operation shares: its signature, the caller check, form validation, and
resolving the account an operation acts on."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from meshproxy.config import PlanConfig, Settings
from meshproxy.control import audit
from meshproxy.control.errors import (
    Forbidden,
    FormInvalid,
    NotFound,
    PlanUnavailable,
    Unavailable,
)
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import Form
from meshproxy.store import Store, StoreUnavailable
from meshproxy.store.errors import STORE_DOWN

Data = Mapping[str, str]  # a request's raw parameters (query string or form body)
R = TypeVar("R", covariant=True)
R2 = TypeVar("R2")

SUB_ACCOUNT_CALLER = "Sub-accounts cannot use the API; authenticate as the parent account."
DEACTIVATED_CALLER = "This account is deactivated."
NOT_YOURS = "This username is not one of your sub-accounts."
NO_SUCH_ACCOUNT = "Sub-account not found."


class Operation(Protocol[R]):
    """Every control-plane operation: who asks, with which raw parameters, and when."""

    def __call__(
        self,
        settings: Settings,
        store: Store,
        caller: AccountRecord,
        data: Mapping[str, str],
        *,
        now: datetime | None = None,
    ) -> R: ...


class _Body(Protocol[R]):
    """An operation as written: `now` always given."""

    def __call__(
        self,
        settings: Settings,
        store: Store,
        caller: AccountRecord,
        data: Mapping[str, str],
        *,
        now: datetime,
    ) -> R: ...


def operation(fn: _Body[R2]) -> Operation[R2]:
    """Only active parent accounts may operate; an unreachable store is a 503."""
    return _operation(fn, None)


def change(name: str) -> Callable[[_Body[R2]], Operation[R2]]:
    """An operation that changes something: as `operation`, and each success is written to
    the audit log as `name` (its target: the `username` parameter, else the caller; its
    fields: the other parameters, secrets redacted)."""
    return lambda fn: _operation(fn, name)


def _operation(fn: _Body[R2], audited: str | None) -> Operation[R2]:
    @functools.wraps(fn)
    def run(
        settings: Settings,
        store: Store,
        caller: AccountRecord,
        data: Mapping[str, str],
        *,
        now: datetime | None = None,
    ) -> R2:
        require_parent(caller)
        now = now or datetime.now(UTC)
        try:
            result = fn(settings, store, caller, data, now=now)
        except StoreUnavailable:
            raise Unavailable(STORE_DOWN) from None
        if audited is not None:
            target = data.get("username") or caller.username
            fields = {k: v for k, v in data.items() if k != "username"}
            audit.record(store, audited, target, fields, actor=caller, owner=caller, now=now)
        return result

    return run


def require_parent(caller: AccountRecord) -> None:
    if not caller.is_parent:
        raise Forbidden(SUB_ACCOUNT_CALLER)
    if not caller.active:
        raise Forbidden(DEACTIVATED_CALLER)


def validated(form_class: type[Form], data: Mapping[str, str]) -> dict[str, Any]:
    form = form_class(data)
    if not form.is_valid:
        raise FormInvalid(form.errors)
    return form.cleaned


def own_sub_account(store: Store, caller: AccountRecord, username: str) -> AccountRecord:
    """The caller's sub-account `username`: 404 when nobody has it, 403 when not the caller's."""
    account = store.accounts.get(username)
    if account is None:
        raise NotFound(NO_SUCH_ACCOUNT)
    if account.parent_id != caller.id:
        raise Forbidden(NOT_YOURS)
    return account


def target_account(store: Store, caller: AccountRecord, username: str | None) -> AccountRecord:
    """The caller itself, or (with a username) one of its sub-accounts (never another
    parent, not even the caller named by its own username: that is not a sub-account)."""
    if username is None:
        return caller
    return own_sub_account(store, caller, username)


def caller_plan(settings: Settings, caller: AccountRecord) -> PlanConfig:
    plan = settings.plan(caller.plan or "")
    if plan is None:
        # Only the operator ends this (declares the plan again, or moves the account): no
        # promise of minutes; Retry-After an hour (docs/configuration.md).
        raise PlanUnavailable(
            # The spec's words first (clients match on them), then what ends it.
            "Plan error - unable to lookup subscription plan: it is not configured on this"
            " server. Please contact the operator.",
            retry_after=3600,
        )
    return plan
