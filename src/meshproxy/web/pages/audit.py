"""The audit log of a parent's own accounts: who changed what, when, from where."""

from __future__ import annotations

from starlette.responses import Response

from meshproxy.control.history import SHOWN, own_audit_entries
from meshproxy.web.context import Ctx


def audit(ctx: Ctx) -> Response:
    entries = own_audit_entries(ctx.settings, ctx.store, ctx.user, {}, now=ctx.now)
    return ctx.render("audit.html", entries=entries, shown=SHOWN)
