"""API help: curl examples written with this installation's own API URL and proxies."""

from __future__ import annotations

from starlette.responses import Response

from meshproxy.domain.proxies import proxy_address
from meshproxy.web.context import Ctx


def api_help(ctx: Ctx) -> Response:
    settings = ctx.settings
    self_signed = settings.api.tls and settings.api.tls_cert is None
    proxies = [proxy_address(proxy) for proxy in settings.proxies]
    geo = [proxy for proxy in settings.proxies if proxy.geo]
    return ctx.render(
        "help.html",
        api_url=settings.api_url,
        curl="curl -k" if self_signed else "curl",
        self_signed=self_signed,
        proxies=proxies,
        example_proxy=proxies[0] if proxies else "proxy.example.com:31280",
        geo_proxy=geo[0].name if geo else None,
    )
