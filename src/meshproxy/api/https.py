"""302 to https for a request that arrived over plain HTTP, when `require_https` is on."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from meshproxy.api.forwarding import Forwarding
from meshproxy.config import Settings


class HttpsTarget:
    """Where https lives: the public URL when configured, else the host the client asked
    for on the HTTPS port (`port` is updated to the bound one when serving on port 0)."""

    def __init__(self, settings: Settings) -> None:
        public = settings.api.public_url.rstrip("/")
        self.public_base = public if public.startswith("https://") else ""
        self.port = settings.api.https_port
        self.default_host = settings.api.listen

    def base(self, scope: Scope) -> str:
        if self.public_base:
            return self.public_base
        host = urlsplit("//" + Headers(scope=scope).get("host", "")).hostname
        host = host or self.default_host
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}" if self.port == 443 else f"https://{host}:{self.port}"

    def url(self, scope: Scope) -> str:
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope.get("path", "/"))
        query = scope.get("query_string", b"").decode("latin-1")
        return self.base(scope) + path + (f"?{query}" if query else "")


class RequireHttps:
    def __init__(self, app: ASGIApp, *, target: HttpsTarget, forwarding: Forwarding) -> None:
        self.app = app
        self.target = target
        self.forwarding = forwarding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.forwarding.scheme(scope) == "http":
            location = self.target.url(scope)
            response = JSONResponse(
                {"error": "HTTPS is required.", "location": location},
                status_code=302,
                headers={"Location": location},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
