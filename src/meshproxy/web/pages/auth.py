"""Logging in and out, and changing one's own password."""

from __future__ import annotations

from starlette.responses import Response

from meshproxy.control.credentials import LoginRefused
from meshproxy.control.errors import FormInvalid
from meshproxy.control.own_account import change_own_password
from meshproxy.domain.forms import NON_FIELD_ERRORS, REQUIRED
from meshproxy.web.context import HOME_PATH, LOGIN_PATH, PREFIX, Ctx
from meshproxy.web.pages.common import FormErrors, safe_next
from meshproxy.web.sessions import Session

PASSWORD_PATH = f"{PREFIX}/password/"
LOGGED_OUT = "You have logged out everywhere: every session of this account has ended."


def login(ctx: Ctx) -> Response:
    target = safe_next(ctx.form.get("next") or ctx.query.get("next"))
    if ctx.request.method == "GET":
        if ctx.account is not None:
            return ctx.redirect(target)
        return ctx.render("login.html", errors={}, username="", next=target)
    username = ctx.form.get("username", "")
    password = ctx.form.get("password", "")
    errors: FormErrors = {}
    for name, value in (("username", username), ("password", password)):
        if not value:
            errors[name] = [REQUIRED]
    if not errors:
        try:
            account = ctx.dash.checker.check(username, password, ctx.client_ip, ctx.now.timestamp())
        except LoginRefused as refused:
            errors[NON_FIELD_ERRORS] = [refused.message]
            status = 403 if refused.banned_until is not None else 400
            return ctx.render(
                "login.html", status=status, errors=errors, username=username, next=target
            )
        ctx.session = ctx.dash.codec.logged_in(account)
        return ctx.redirect(target)
    return ctx.render("login.html", status=400, errors=errors, username=username, next=target)


def logout(ctx: Ctx) -> Response:
    """Log out everywhere: this browser's cookie is replaced, and raising the account's
    session epoch ends every other session of it too (a copied cookie included)."""
    ctx.session = Session()  # first: this browser is logged out even if the store is down
    if ctx.account is not None:
        ctx.store.accounts.bump_session_epoch(ctx.account.username)
    return ctx.redirect(LOGIN_PATH, flash=LOGGED_OUT)


def password(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return ctx.render("password.html", errors={})
    try:
        updated = change_own_password(ctx.store, ctx.user, ctx.form, ctx.dash.checker.verify)
    except FormInvalid as invalid:
        return ctx.render("password.html", status=400, errors=invalid.errors)
    # This session stays logged in (with the new epoch); every other one ends.
    ctx.session = ctx.dash.codec.logged_in(updated)
    return ctx.redirect(HOME_PATH, flash="Your password has been changed.")
