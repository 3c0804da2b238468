"""What a logged-in account may do to itself, parent or sub-account alike: change its
password (knowing the current one). Same length rule and messages as the API's forms."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from meshproxy.control import audit
from meshproxy.control.errors import FormInvalid, NotFound
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import Field, Form, clean_password
from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store

WRONG_PASSWORD = "Your current password was entered incorrectly."
MISMATCH = "The two password fields didn't match."


class PasswordChangeForm(Form):
    fields = {
        "current_password": Field(clean_password, required=True),
        "new_password": Field(clean_password, required=True),
        "confirm_password": Field(clean_password, required=True),
    }


def change_own_password(
    store: Store,
    account: AccountRecord,
    data: Mapping[str, str],
    verify: Callable[[AccountRecord, str], bool],
) -> AccountRecord:
    """Replace the account's password; `verify` checks the current one (a cache may help)."""
    form = PasswordChangeForm(data)
    cleaned = form.cleaned
    if "current_password" in cleaned and not verify(account, cleaned["current_password"]):
        form.add_error("current_password", WRONG_PASSWORD)
    if (
        "new_password" in cleaned
        and "confirm_password" in cleaned
        and cleaned["new_password"] != cleaned["confirm_password"]
    ):
        form.add_error("confirm_password", MISMATCH)
    if not form.is_valid:
        raise FormInvalid(form.errors)
    updated = store.accounts.update(
        account.username, password_hash=hash_password(cleaned["new_password"])
    )
    if updated is None:
        raise NotFound("Account not found.")
    audit.record(
        store, "account.password", account.username, {"password": ""}, actor=account, owner=account
    )
    return updated
