"""An address under /dashboard/ that is no page: an HTML 404 like every other dashboard
answer (the API's own paths keep their JSON 404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from meshproxy.web.context import PREFIX, SECURITY_HEADERS, Ctx, Dashboard

NOT_FOUND = "There is no page at this address."
STATUS = 404


def not_found(ctx: Ctx) -> Response:
    """GET and HEAD: the error page with the visitor's session (navigation when logged in)."""
    return ctx.error(STATUS, NOT_FOUND)


def not_found_without_session(dash: Dashboard) -> Callable[[Request], Awaitable[Response]]:
    """Any other method: the same page without reading the body or the session (a POST here
    is no form of ours, so its missing CSRF token must not turn the 404 into a 403)."""

    async def handle(request: Request) -> Response:
        html = dash.templates.get_template("error.html").render(
            account=None,
            csrf="",
            flash=None,
            path=request.url.path,
            prefix=PREFIX,
            status_code=STATUS,
            message=NOT_FOUND,
        )
        return HTMLResponse(html, status_code=STATUS, headers=SECURITY_HEADERS)

    return handle
