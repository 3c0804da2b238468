"""Naming of proxy servers: `host`, `host.domain` or `host.domain:port` all name one proxy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class ProxyRef(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def port(self) -> int: ...


P = TypeVar("P", bound=ProxyRef)


def resolve_proxy_name(text: str, proxies: Iterable[P]) -> P | None:
    """The proxy named by `text`, or None when no proxy matches it."""
    host, _, port_text = text.strip().lower().rpartition(":")
    if not host or not port_text.isdigit():
        host, port_text = text.strip().lower(), ""
    for proxy in proxies:
        if host not in (proxy.name.lower(), proxy.domain.lower()):
            continue
        if port_text and int(port_text) != proxy.port:
            continue
        return proxy
    return None


def proxy_address(proxy: ProxyRef) -> str:
    """The `domain:port` form that /api/proxies/ lists."""
    return f"{proxy.domain}:{proxy.port}"
