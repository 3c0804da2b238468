"""A parent's webhooks for usage notices: add (URL and secret), list, delete; and the rule
for where a webhook may point: a public address, unless the operator allows a network
(`[alerts] allow_networks`), over https unless `[alerts] allow_http`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from meshproxy.config import Settings
from meshproxy.control.access_lists import resolve
from meshproxy.control.common import Data, change, operation, validated
from meshproxy.control.errors import FormInvalid, NotFound, PaymentRequired
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.addresses import hostname_address_refused, networks, normalise_ip
from meshproxy.domain.alerts import WebhookForm, WebhookIdForm
from meshproxy.store import Store
from meshproxy.store.alerts import NoticeView, WebhookRecord
from meshproxy.store.errors import LimitReached

NO_SUCH_WEBHOOK = "Webhook not found."
NOTICES_SHOWN = 50


@dataclass(frozen=True)
class Destination:
    refused: str | None  # why the webhook may not be called now (None: it may)
    address: str = ""  # where to connect: the first address its host resolved to


def check_destination(settings: Settings, url: str) -> Destination:
    """May a webhook be called at `url` now: the scheme, a name that does not resolve, or
    an address that is not public and not allowed refuse it. Checked when it is added and
    again before every delivery, which then connects to the address checked (a name
    resolving elsewhere a moment later cannot send it into a private network)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not settings.alerts.allow_http:
        return Destination("Webhook URLs must use https://.")
    host = parts.hostname or ""
    literal = normalise_ip(host)
    addresses = (literal,) if literal is not None else resolve(host)
    if not addresses:
        return Destination(f"The host {host} does not resolve.")
    allowed = networks(settings.alerts.allow_networks)
    for address in addresses:
        why = hostname_address_refused(address, allowed)
        if why is not None:
            return Destination(f"The host {host} resolves to {address}, a {why} address.")
    return Destination(None, addresses[0])


def webhook_details(webhook: WebhookRecord) -> dict[str, Any]:
    """A webhook as the API shows it (never its secret)."""
    return {"id": webhook.id, "url": webhook.url, "created": webhook.created_at.isoformat()}


@change("webhook.add")
def add_webhook(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, Any]:
    cleaned = validated(WebhookForm, data)
    why = check_destination(settings, cleaned["url"]).refused
    if why is not None:
        raise FormInvalid.one("url", why)
    most = settings.alerts.max_webhooks
    try:
        webhook = store.alerts.add_webhook(
            caller.id, cleaned["url"], cleaned["secret"], now, max_webhooks=most
        )
    except LimitReached:
        raise PaymentRequired(f"An account may have {most} webhooks.") from None
    return webhook_details(webhook)


@operation
def list_webhooks(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, Any]:
    return {"webhooks": [webhook_details(w) for w in store.alerts.list_webhooks(caller.id)]}


@change("webhook.delete")
def delete_webhook(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> None:
    cleaned = validated(WebhookIdForm, data)
    if not store.alerts.delete_webhook(caller.id, cleaned["id"]):
        raise NotFound(NO_SUCH_WEBHOOK)


@operation
def usage_notices(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> list[NoticeView]:
    """The caller's newest notices (its own and its sub-accounts'), with every delivery
    attempt: what the dashboard shows."""
    return store.alerts.history(caller.id, limit=NOTICES_SHOWN)
