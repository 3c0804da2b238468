"""Authorized proxies of a parent account (its sub-accounts use the same ones), and the
country counts of geo proxies' egress pools."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from meshproxy.config import ProxyConfig, Settings
from meshproxy.control.common import Data, caller_plan, change, operation, validated
from meshproxy.control.errors import FormInvalid, NotFound, PaymentRequired
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.forms import ProxyForm
from meshproxy.domain.proxies import proxy_address, resolve_proxy_name
from meshproxy.store import Store
from meshproxy.store.errors import LimitReached

UNKNOWN_PROXY = "Unknown proxy."


def _named_proxy(settings: Settings, data: Mapping[str, str]) -> ProxyConfig:
    cleaned = validated(ProxyForm, data)
    proxy = resolve_proxy_name(cleaned["proxy"], settings.proxies)
    if proxy is None:
        raise FormInvalid.one("proxy", UNKNOWN_PROXY)
    return proxy


def _configured(settings: Settings, names: list[str]) -> list[ProxyConfig]:
    """The authorized proxies that still exist, in configuration order."""
    wanted = set(names)
    return [proxy for proxy in settings.proxies if proxy.name in wanted]


@operation
def list_proxies(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, list[str]]:
    authorized = _configured(settings, store.access.authorized_proxies(caller))
    return {"proxies": [proxy_address(proxy) for proxy in authorized]}


@change("proxy.add")
def add_proxy(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, str]:
    proxy = _named_proxy(settings, data)
    plan = caller_plan(settings, caller)
    try:
        # Adding one already authorized changes nothing (and is no 402); the count is of
        # the authorized proxies still configured, taken in the transaction that adds.
        store.access.authorize_proxy(
            caller,
            proxy.name,
            max_proxies=plan.max_proxies,
            counting=[configured.name for configured in settings.proxies],
        )
    except LimitReached:
        raise PaymentRequired(
            f"Your plan allows {plan.max_proxies} proxies. Upgrade your plan to add more."
        ) from None
    return {"proxy": proxy.domain}


@change("proxy.delete")
def delete_proxy(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> None:
    store.access.deauthorize_proxy(caller, _named_proxy(settings, data).name)


@operation
def geoips(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, int]:
    """{"CC": count} over a geo proxy's egress pool; `data["name"]` names the proxy.
    Each entry counts once: an address, an upstream proxy, and a prefix too (one entry
    per prefix, however many addresses it holds; docs/egress.md)."""
    proxy = resolve_proxy_name(data.get("name", ""), settings.proxies)
    if proxy is None or not proxy.geo:
        raise NotFound("No geo proxy of that name.")
    counts = Counter(egress.country for egress in proxy.egress if egress.country)
    return dict(sorted(counts.items()))
