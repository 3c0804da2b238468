"""Proxies: the parent's authorized ones (add and remove within its plan), the geo pools'
countries, and for a sub-account ready-to-copy proxy URLs."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from meshproxy.config import ProxyConfig
from meshproxy.control.egress_health import read_egress_health, summary
from meshproxy.control.errors import ControlError
from meshproxy.control.proxies import add_proxy, delete_proxy, geoips, list_proxies
from meshproxy.domain.proxies import proxy_address
from meshproxy.domain.steering import username_with_options
from meshproxy.web.context import PREFIX, Ctx
from meshproxy.web.pages.common import FormErrors, acting_caller, form_errors

PROXIES_PATH = f"{PREFIX}/proxies/"
DASHBOARD_HEALTH_SECONDS = 5.0  # the node is asked for its upstreams' health at most this often


@dataclass(frozen=True)
class ProxyUrls:
    proxy: ProxyConfig
    address: str  # domain:port
    with_password: str  # a URL with the account's username and a password placeholder
    by_ip: str  # the URL for IP or hostname authentication
    health: str = ""  # its upstream egresses' (control/egress_health.py); "" without any
    socks: str = ""  # its SOCKS5 URL (socks_port), with the username; "" without one
    https: str = ""  # its HTTPS proxy URL (tls_port: TLS to the proxy); "" without one


@dataclass(frozen=True)
class Steering:
    """The username-options builder (?country=&session=&sesstime=): the username the
    proxy URLs carry (docs/clients.md)."""

    country: str = ""
    session: str = ""
    minutes: str = ""
    username: str = ""  # the account's username with the options
    error: str = ""


def steering(ctx: Ctx) -> Steering:
    query = ctx.query
    country, session, minutes = (
        query.get(name, "").strip() for name in ("country", "session", "sesstime")
    )
    built = username_with_options(
        ctx.user.username, country=country, session=session, minutes=minutes
    )
    if built is None:
        return Steering(country, session, minutes, ctx.user.username,
                        "Country: two letters; session: 1-64 of A-Z a-z 0-9 . _ ~; "
                        "session minutes: 1-1440.")
    return Steering(country, session, minutes, built)


def _authorized(ctx: Ctx) -> list[ProxyConfig]:
    caller, _ = acting_caller(ctx)
    listed = set(list_proxies(ctx.settings, ctx.store, caller, {}, now=ctx.now)["proxies"])
    return [proxy for proxy in ctx.settings.proxies if proxy_address(proxy) in listed]


def proxy_urls(ctx: Ctx, *, health: bool = False) -> list[ProxyUrls]:
    authorized = _authorized(ctx)
    report = None
    if health and any(e.upstream is not None for p in authorized for e in p.egress):
        report = read_egress_health(ctx.settings, fresh_for=DASHBOARD_HEALTH_SECONDS)
    user = f"{steering(ctx).username}:PASSWORD@"
    return [
        ProxyUrls(
            proxy=proxy,
            address=proxy_address(proxy),
            with_password=f"http://{user}{proxy_address(proxy)}",
            by_ip=f"http://{proxy_address(proxy)}",
            health=summary(proxy, report) if health else "",
            socks=f"socks5h://{user}{proxy.domain}:{proxy.socks_port}" if proxy.socks_port else "",
            https=f"https://{user}{proxy.domain}:{proxy.tls_port}" if proxy.tls_port else "",
        )
        for proxy in authorized
    ]


def _geo_pools(ctx: Ctx) -> list[tuple[ProxyConfig, dict[str, int]]]:
    caller, _ = acting_caller(ctx)
    return [
        (proxy, geoips(ctx.settings, ctx.store, caller, {"name": proxy.name}, now=ctx.now))
        for proxy in ctx.settings.proxies
        if proxy.geo
    ]


def _page(ctx: Ctx, errors: dict[str, FormErrors] | None = None, status: int = 200) -> Response:
    urls = proxy_urls(ctx, health=True)
    authorized = {item.proxy.name for item in urls}
    plan = ctx.settings.plan(ctx.user.plan or "") if ctx.user.is_parent else None
    return ctx.render(
        "proxies.html",
        status=status,
        proxies=urls,
        steering=steering(ctx),
        addable=[p for p in ctx.settings.proxies if p.name not in authorized],
        plan=plan,
        geo_pools=_geo_pools(ctx),
        errors=errors or {},
    )


def proxies(ctx: Ctx) -> Response:
    return _page(ctx)


def _change(ctx: Ctx, add: bool) -> Response:
    operation = add_proxy if add else delete_proxy
    data = {"proxy": ctx.form.get("proxy", "")}
    try:
        operation(ctx.settings, ctx.store, ctx.user, data, now=ctx.now)
    except ControlError as error:
        return _page(ctx, {"add" if add else "delete": form_errors(error)}, status=error.status)
    verb = "authorized" if add else "removed"
    return ctx.redirect(PROXIES_PATH, flash=f"Proxy {data['proxy']} {verb}.")


def add(ctx: Ctx) -> Response:
    return _change(ctx, add=True)


def remove(ctx: Ctx) -> Response:
    return _change(ctx, add=False)
