"""The plumbing every dashboard page shares: the session cookie, who is logged in, the CSRF
check on every POST, error pages, security headers, and running the page's (synchronous)
code in a worker thread so the store and password hashing never block the event loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from meshproxy.config import Settings
from meshproxy.control.audit import Origin, acting_from
from meshproxy.control.credentials import CredentialChecker
from meshproxy.control.errors import ControlError
from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store, StoreUnavailable
from meshproxy.store.errors import STORE_DOWN
from meshproxy.web.client_info import ClientInfo
from meshproxy.web.sessions import COOKIE_NAME, Session, SessionCodec

log = logging.getLogger("meshproxy.web")

Clock = Callable[[], float]  # seconds since the epoch, like the API's clock
PREFIX = "/dashboard"
LOGIN_PATH = f"{PREFIX}/login/"
HOME_PATH = f"{PREFIX}/"
STALE_FORM = "This form has expired (or came from another site). Reload the page and try again."
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class Access(Enum):
    ANYONE = "anyone"
    ACCOUNT = "account"  # any logged-in account
    PARENT = "parent"  # parent accounts only; a sub-account gets 403


@dataclass
class Dashboard:
    """What every page needs, built once by `dashboard_routes`."""

    settings: Settings
    store: Store
    clock: Clock
    codec: SessionCodec
    checker: CredentialChecker
    templates: Environment
    clients: ClientInfo


@dataclass
class Ctx:
    """One request as a page sees it. `session` may be replaced; the cookie follows."""

    dash: Dashboard
    request: Request
    session: Session
    client_ip: str
    now: datetime
    form: dict[str, str] = field(default_factory=dict)
    account: AccountRecord | None = None

    @property
    def settings(self) -> Settings:
        return self.dash.settings

    @property
    def store(self) -> Store:
        return self.dash.store

    @property
    def user(self) -> AccountRecord:
        """The logged-in account (pages with Access.ACCOUNT or PARENT always have one)."""
        assert self.account is not None
        return self.account

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    def param(self, name: str) -> str:
        return self.request.path_params[name]  # type: ignore[no-any-return]

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        flash, self.session = self.session.flash, self.session.with_flash(None)
        html = self.dash.templates.get_template(template).render(
            account=self.account,
            csrf=self.session.csrf,
            flash=flash,
            path=self.request.url.path,
            prefix=PREFIX,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str, flash: str | None = None) -> Response:
        """After a successful POST: see the result with a GET (reloading re-posts nothing)."""
        if flash:
            self.session = self.session.with_flash(flash)
        return RedirectResponse(url, status_code=303)

    def error(self, status: int, message: str) -> HTMLResponse:
        return self.render("error.html", status=status, status_code=status, message=message)


Page = Callable[[Ctx], Response]


def _logged_in(ctx: Ctx) -> AccountRecord | None:
    username = ctx.session.username
    if username is None:
        return None
    account = ctx.store.accounts.get(username)
    if account is None or not ctx.dash.codec.still_valid(ctx.session, account):
        return None  # deleted, logged out, or its password changed since this login
    return account


def _run(dash: Dashboard, page: Page, access: Access, ctx: Ctx, csrf_ok: bool) -> Response:
    try:
        ctx.account = _logged_in(ctx)
        if ctx.account is None and ctx.session.username is not None:
            ctx.session = Session()
        if access is not Access.ANYONE and ctx.account is None:
            target = ctx.request.url.path if ctx.request.method == "GET" else HOME_PATH
            return RedirectResponse(f"{LOGIN_PATH}?next={quote(target)}", status_code=303)
        if not csrf_ok:
            return ctx.error(403, STALE_FORM)
        if access is Access.PARENT and not ctx.user.is_parent:
            return ctx.error(403, "This page is for parent accounts only.")
        user = None if ctx.account is None else ctx.account.username
        with acting_from(Origin("dashboard", ctx.client_ip, user)):
            return page(ctx)
    except ControlError as error:  # not handled by the page: a whole-page answer
        return ctx.error(error.status, error.message)
    except StoreUnavailable as error:
        log.warning("store unavailable: %s", error)
        return ctx.error(503, STORE_DOWN)


def endpoint(dash: Dashboard, page: Page, access: Access) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        loaded = dash.codec.loads(request.cookies.get(COOKIE_NAME))
        session = loaded or Session()
        form: dict[str, str] = {}
        csrf_ok = True
        if request.method == "POST":
            async with request.form() as submitted:
                for key, value in submitted.multi_items():
                    if isinstance(value, str):
                        form.setdefault(key, value)
            csrf_ok = dash.codec.csrf_ok(session, form.pop("csrf", None))
        ctx = Ctx(
            dash=dash,
            request=request,
            session=session,
            client_ip=dash.clients.client_address(request.scope),
            now=datetime.fromtimestamp(dash.clock(), UTC),
            form=form,
        )
        response = await run_in_threadpool(_run, dash, page, access, ctx, csrf_ok)
        if ctx.session != loaded:
            response.set_cookie(
                COOKIE_NAME,
                dash.codec.dumps(ctx.session),
                httponly=True,
                samesite="lax",
                secure=dash.clients.scheme(request.scope) == "https",
                path="/",
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
        return response

    return handle
