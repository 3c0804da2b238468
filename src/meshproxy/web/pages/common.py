"""What several pages share: turning control errors into form errors, acting on an
account's own IPs and hostnames, and where a login may send the browser next."""

from __future__ import annotations

from meshproxy.control.common import Data
from meshproxy.control.errors import ControlError, FormInvalid, NotFound
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import NON_FIELD_ERRORS
from meshproxy.web.context import HOME_PATH, PREFIX, Ctx

FormErrors = dict[str, list[str]]


def form_errors(error: ControlError) -> FormErrors:
    """Field errors as the API answers them; any other refusal above the form."""
    if isinstance(error, FormInvalid):
        return error.errors
    return {NON_FIELD_ERRORS: [error.message]}


def acting_caller(ctx: Ctx) -> tuple[AccountRecord, Data]:
    """Who performs an operation on the logged-in account's own IPs, hostnames and proxy
    list: a parent itself; for a sub-account, its parent on its behalf (the API's rule
    "a parent manages its sub-accounts" then applies unchanged)."""
    user = ctx.user
    if user.is_parent:
        return user, {}
    parent = ctx.store.accounts.get(user.parent_username or "")
    if parent is None:
        raise NotFound("Parent account not found.")
    return parent, {"username": user.username}


def safe_next(target: str | None) -> str:
    """Only a dashboard path (never another site) may follow a login."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return HOME_PATH
