"""A parent's sub-accounts: the searchable, sortable table, and creating, editing,
(de)activating and deleting one, each through the API's own control operations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import Response

from meshproxy.control.errors import ControlError
from meshproxy.control.subaccounts import (
    activate_sub_account,
    create_sub_account,
    deactivate_sub_account,
    delete_sub_account,
    edit_sub_account,
    get_sub_account,
)
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.limits import Usage
from meshproxy.domain.units import GB
from meshproxy.store.accounts import SUB_ACCOUNT_SORTS, SubAccountRow
from meshproxy.web.context import PREFIX, Ctx
from meshproxy.web.pages.access import access_lists, change_access
from meshproxy.web.pages.common import FormErrors, form_errors
from meshproxy.web.state import AccountState, account_state, sub_account_state, usage_now
from meshproxy.web.stats import stats_view
from meshproxy.web.usage import period_charts

LIST_PATH = f"{PREFIX}/sub-accounts/"
NEW_PATH = f"{PREFIX}/new-sub-account/"  # outside LIST_PATH: "new" is a valid username
PAGE_SIZE = 50
SEARCH_MAX = 100
FIELDS = ("username", "password", "first_name", "last_name", "email")
LIMITS = ("monthly_limit", "total_limit")


def detail_path(username: str) -> str:
    return f"{LIST_PATH}{quote(username, safe='')}/"


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**9 else 1


def sub_accounts(ctx: Ctx) -> Response:
    search = ctx.query.get("q", "").strip()[:SEARCH_MAX]
    sort = ctx.query.get("sort", "username")
    if sort not in SUB_ACCOUNT_SORTS:
        sort = "username"
    descending = ctx.query.get("dir") == "desc"
    page = _page_number(ctx.query.get("page"))
    result = ctx.store.accounts.sub_account_page(
        ctx.user,
        ctx.now,
        search=search,
        sort=sort,
        descending=descending,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pages = max(1, math.ceil(result.matching / PAGE_SIZE))
    total = ctx.store.accounts.count_sub_accounts(ctx.user.id) if search else result.matching

    def url(**changes: Any) -> str:
        params = {"q": search, "sort": sort, "dir": "desc" if descending else "asc", "page": page}
        params.update(changes)
        kept = {k: v for k, v in params.items() if v not in ("", None)}
        return f"{LIST_PATH}?{urlencode(kept)}"

    parent_usage = usage_now(ctx.store, ctx.user, ctx.now)

    def state_of(row: SubAccountRow) -> AccountState:
        usage = Usage(row.monthly_bytes, row.total_bytes)
        return account_state(row.account, usage, ctx.user, parent_usage)

    def sort_url(key: str) -> str:
        """Sorting by a column again reverses it; numbers and dates start biggest first."""
        if key == sort:
            direction = "asc" if descending else "desc"
        else:
            direction = "desc" if key in ("monthly", "total", "created") else "asc"
        return url(sort=key, dir=direction, page=1)

    return ctx.render(
        "sub_accounts.html",
        rows=result.rows,
        search=search,
        sort=sort,
        descending=descending,
        page=page,
        pages=pages,
        matching=result.matching,
        total=total,
        plan=ctx.settings.plan(ctx.user.plan or ""),
        url=url,
        sort_url=sort_url,
        state_of=state_of,
        detail_path=detail_path,
    )


def _submitted(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: form[name] for name in names if name in form}


def new_sub_account(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return ctx.render("sub_account_new.html", errors={}, values={})
    data = _submitted(ctx.form, FIELDS + LIMITS)
    try:
        created = create_sub_account(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    except ControlError as error:
        values = {k: v for k, v in data.items() if k != "password"}
        return ctx.render(
            "sub_account_new.html", status=error.status, errors=form_errors(error), values=values
        )
    username = created["username"]
    return ctx.redirect(detail_path(username), flash=f"Sub-account {username} created.")


def _edit_values(account: AccountRecord) -> dict[str, str]:
    return {
        "first_name": account.first_name or "",
        "last_name": account.last_name or "",
        "email": account.email or "",
        "monthly_limit": str(account.limits.monthly_gb),
        "total_limit": str(account.limits.total_gb),
    }


def _detail(
    ctx: Ctx,
    errors: dict[str, FormErrors] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    username = ctx.param("username")
    data = {"username": username}
    details = get_sub_account(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    account = ctx.store.accounts.get(username)
    if account is None:  # deleted between the two reads
        return ctx.error(404, "Sub-account not found.")
    # The API's details in GB (9 decimals: whole bytes) back to bytes for display.
    monthly = round(details["monthly_bandwidth"] * GB)
    total = round(details["total_bandwidth"] * GB)
    return ctx.render(
        "sub_account.html",
        status=status,
        sub=account,
        details=details,
        state=sub_account_state(ctx.store, account, Usage(monthly, total), ctx.user, ctx.now),
        monthly=monthly,
        total=total,
        lists=access_lists(ctx, ctx.user, {"username": username}),
        charts=period_charts(ctx.store, account, ctx.now),
        stats=stats_view(ctx.store, account, ctx.now),
        errors=errors or {},
        values={**_edit_values(account), **(values or {})},
        action_base=detail_path(username).rstrip("/"),
        client_ip=ctx.client_ip,
        path_of=detail_path,
    )


def sub_account(ctx: Ctx) -> Response:
    return _detail(ctx)


def edit(ctx: Ctx) -> Response:
    username = ctx.param("username")
    data = {**_submitted(ctx.form, FIELDS[1:] + LIMITS), "username": username}
    try:
        edit_sub_account(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    except ControlError as error:
        values = {k: v for k, v in data.items() if k != "password"}
        return _detail(ctx, {"edit": form_errors(error)}, values, status=error.status)
    return ctx.redirect(detail_path(username), flash="Changes saved.")


def set_active(active: bool) -> Any:
    operation = activate_sub_account if active else deactivate_sub_account

    def change(ctx: Ctx) -> Response:
        username = ctx.param("username")
        operation(ctx.settings, ctx.store, ctx.user, {"username": username}, now=ctx.now)
        state = "activated" if active else "deactivated"
        return ctx.redirect(detail_path(username), flash=f"Sub-account {username} {state}.")

    return change


def delete(ctx: Ctx) -> Response:
    username = ctx.param("username")
    data = {"username": username}
    if ctx.request.method == "GET":
        details = get_sub_account(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
        return ctx.render("sub_account_delete.html", details=details, back=detail_path(username))
    delete_sub_account(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    return ctx.redirect(LIST_PATH, flash=f"Sub-account {username} deleted.")


def change_sub_access(ctx: Ctx) -> Response:
    username = ctx.param("username")
    outcome = change_access(ctx, ctx.user, {"username": username})
    if outcome.error is not None:
        return _detail(ctx, outcome.errors, ctx.form, status=outcome.error.status)
    return ctx.redirect(detail_path(username), flash=outcome.message)
