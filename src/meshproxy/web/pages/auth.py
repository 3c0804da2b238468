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
        key = ctx.dash.codec.password_key(account.password_hash)
        ctx.session = ctx.session.logged_in(account.username, key)
        return ctx.redirect(target)
    return ctx.render("login.html", status=400, errors=errors, username=username, next=target)


def logout(ctx: Ctx) -> Response:
    ctx.session = Session()
    return ctx.redirect(LOGIN_PATH, flash="You have logged out.")


def password(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        return ctx.render("password.html", errors={})
    try:
        updated = change_own_password(ctx.store, ctx.user, ctx.form, ctx.dash.checker.verify)
    except FormInvalid as invalid:
        return ctx.render("password.html", status=400, errors=invalid.errors)
    # This session stays logged in; every other session of the account ends.
    ctx.session = ctx.session.logged_in(
        updated.username, ctx.dash.codec.password_key(updated.password_hash)
    )
    return ctx.redirect(HOME_PATH, flash="Your password has been changed.")
