"""Usage alerts on the dashboard: a parent's webhooks (add, delete: the API's operations),
the notices made for its accounts, and every attempt to deliver each."""

from __future__ import annotations

from starlette.responses import Response

from meshproxy.control.errors import ControlError
from meshproxy.control.webhooks import (
    NOTICES_SHOWN,
    add_webhook,
    delete_webhook,
    list_webhooks,
    usage_notices,
)
from meshproxy.web.context import PREFIX, Ctx
from meshproxy.web.pages.common import FormErrors, form_errors

ALERTS_PATH = f"{PREFIX}/alerts/"


def _page(ctx: Ctx, errors: dict[str, FormErrors] | None = None, status: int = 200) -> Response:
    settings, store, user, now = ctx.settings, ctx.store, ctx.user, ctx.now
    return ctx.render(
        "alerts.html",
        status=status,
        webhooks=list_webhooks(settings, store, user, {}, now=now)["webhooks"],
        notices=usage_notices(settings, store, user, {}, now=now),
        shown=NOTICES_SHOWN,
        errors=errors or {},
        values={"url": ctx.form.get("url", "")},
    )


def alerts(ctx: Ctx) -> Response:
    return _page(ctx)


def add(ctx: Ctx) -> Response:
    data = {"url": ctx.form.get("url", ""), "secret": ctx.form.get("secret", "")}
    try:
        added = add_webhook(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    except ControlError as error:
        return _page(ctx, {"add": form_errors(error)}, status=error.status)
    return ctx.redirect(ALERTS_PATH, flash=f"Webhook {added['url']} added.")


def remove(ctx: Ctx) -> Response:
    data = {"id": ctx.form.get("id", "")}
    try:
        delete_webhook(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    except ControlError as error:
        return _page(ctx, {"delete": form_errors(error)}, status=error.status)
    return ctx.redirect(ALERTS_PATH, flash="Webhook deleted.")
