"""The Starlette app of the management API.

Order of checks for a request: 302 to https (when required) -> 404/405 (routing) -> ban and
HTTP Basic authentication (401) -> the operation's own answers (403, 400, 404, 402, 503).
Store calls and password hashing run in worker threads, never on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from meshproxy.api.auth import Authenticator
from meshproxy.api.docs import DOCS_PATH, OPENAPI_PATH, docs_routes
from meshproxy.api.endpoints import ENDPOINTS, Endpoint
from meshproxy.api.errors import EXCEPTION_HANDLERS
from meshproxy.api.forwarding import Forwarding
from meshproxy.api.https import HttpsTarget, RequireHttps
from meshproxy.api.json_body import FixedJSONResponse
from meshproxy.api.openapi import openapi_document
from meshproxy.api.params import form_body, query
from meshproxy.config import Settings
from meshproxy.control.audit import Origin, acting_from
from meshproxy.control.errors import ControlError
from meshproxy.store import Store

Clock = Callable[[], float]
Handler = Callable[[Request], Awaitable[Response]]
API_PREFIX = "/api"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _Api:
    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.forwarding = Forwarding(settings.api.trusted_proxies)
        self.authenticator = Authenticator(store, settings.ban.policy())

    def handler(self, endpoint: Endpoint) -> Handler:
        async def handle(request: Request) -> Response:
            # Read the parameters first, but answer a malformed request only once the
            # caller is authenticated.
            data: dict[str, str] = {}
            bad_request: ControlError | None = None
            try:
                data = await (form_body(request) if endpoint.method == "POST" else _query(request))
            except ControlError as error:
                bad_request = error
            result = await run_in_threadpool(
                self._call,
                endpoint,
                request.headers.get("authorization"),
                self.forwarding.client_address(request.scope),
                data,
                bad_request,
            )
            if result is None:
                return Response(status_code=endpoint.success)
            return FixedJSONResponse(result, status_code=endpoint.success)

        return handle

    def _call(
        self,
        endpoint: Endpoint,
        authorization: str | None,
        client_ip: str,
        data: dict[str, str],
        bad_request: ControlError | None,
    ) -> Any:
        now = self.clock()
        caller = self.authenticator.authenticate(authorization, client_ip, now)
        if bad_request is not None:
            raise bad_request
        with acting_from(Origin("api", client_ip)):
            return endpoint.operation(
                self.settings, self.store, caller, data, now=datetime.fromtimestamp(now, UTC)
            )


async def _query(request: Request) -> dict[str, str]:
    return query(request)


def _route(path: str, endpoint: Handler, methods: list[str]) -> Route:
    """A route of the API's router, which is mounted at /api."""
    return Route(path.removeprefix(API_PREFIX), endpoint, methods=methods)


def _slash_redirect(path: str) -> Route:
    """A path without its trailing slash answers 308 (method and body preserved)."""

    async def redirect(request: Request) -> Response:
        query_string = request.url.query
        location = request.url.path + "/" + (f"?{query_string}" if query_string else "")
        return JSONResponse(
            {"error": "This path ends with a slash.", "location": location},
            status_code=308,
            headers={"Location": location},
        )

    return _route(path.rstrip("/"), redirect, ALL_METHODS)


def create_app(
    settings: Settings,
    store: Store,
    *,
    mounts: Sequence[BaseRoute] = (),
    clock: Clock = time.time,
) -> Starlette:
    """The API app. `mounts` adds routes after the API's (e.g. the dashboard); `clock`
    gives the time in epoch seconds (ban windows, billing periods) so tests need not sleep.
    `app.state.https_target.port` is where the 302 points; the server sets the bound port.
    """
    api = _Api(settings, store, clock)
    document = openapi_document(settings)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    # Everything under /api/ is routed by the API's own router, so an unknown /api/ path
    # is the API's JSON 404 (with 405 for a wrong method) even with a dashboard at /.
    api_routes: list[BaseRoute] = [
        _route(endpoint.path, api.handler(endpoint), [endpoint.method]) for endpoint in ENDPOINTS
    ]
    api_routes.append(_route(OPENAPI_PATH, openapi, ["GET"]))
    api_routes.extend(docs_routes(API_PREFIX))
    api_routes.extend(_slash_redirect(path) for path in [e.path for e in ENDPOINTS] + [DOCS_PATH])
    routes: list[BaseRoute] = [
        Mount(API_PREFIX, app=Router(api_routes, redirect_slashes=False)),
        *mounts,
    ]

    target = HttpsTarget(settings)
    middleware = []
    if settings.api.require_https:
        middleware.append(Middleware(RequireHttps, target=target, forwarding=api.forwarding))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)
    app.router.redirect_slashes = False
    app.state.https_target = target
    return app
