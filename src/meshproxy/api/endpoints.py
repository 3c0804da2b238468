"""Every endpoint of the API: path, method, the control operation behind it, and what the
OpenAPI document says of it. The app's routes and the document are both built from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshproxy.control import access_lists, proxies, stats, subaccounts, webhooks
from meshproxy.control.common import Operation
from meshproxy.domain.alerts import WebhookForm, WebhookIdForm
from meshproxy.domain.forms import (
    Form,
    HostnameForm,
    IpForm,
    OptionalUsernameForm,
    PageForm,
    ProxyForm,
    StatsForm,
    SubAccountEditForm,
    SubAccountForm,
    UsernameForm,
)

DETAILS = "SubAccountDetails"


@dataclass(frozen=True)
class Endpoint:
    method: str  # "GET" (query parameters) or "POST" (form-encoded body)
    path: str
    operation: Operation[Any]
    form: type[Form] | None
    summary: str
    success: int = 200  # with no body when the operation returns None
    body: str | None = None  # schema name of the success body
    errors: tuple[int, ...] = (400,)
    extension: bool = False  # meshproxy's own, not in the ProxyMesh spec


_SUB = (400, 403, 404)
_ENTRY = (400, 403, 404)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/api/sub/create/",
        subaccounts.create_sub_account,
        SubAccountForm,
        "Create a new sub-account",
        body=DETAILS,
        errors=(400, 402, 403, 503),
    ),
    Endpoint(
        "POST",
        "/api/sub/edit/",
        subaccounts.edit_sub_account,
        SubAccountEditForm,
        "Edit a sub-account (absent parameters stay unchanged; empty names/email clear)",
        body=DETAILS,
        errors=_SUB,
    ),
    Endpoint(
        "GET",
        "/api/sub/get/",
        subaccounts.get_sub_account,
        UsernameForm,
        "Get sub-account details, including bandwidth usage and limits",
        body=DETAILS,
        errors=_SUB,
    ),
    Endpoint(
        "POST",
        "/api/sub/deactivate/",
        subaccounts.deactivate_sub_account,
        UsernameForm,
        "Deactivate a sub-account (its proxy requests get 402)",
        body=DETAILS,
        errors=_SUB,
    ),
    Endpoint(
        "POST",
        "/api/sub/activate/",
        subaccounts.activate_sub_account,
        UsernameForm,
        "Activate a sub-account",
        body=DETAILS,
        errors=_SUB,
    ),
    Endpoint(
        "POST",
        "/api/sub/delete/",
        subaccounts.delete_sub_account,
        UsernameForm,
        "Delete a sub-account and all its data; answers an empty 200",
        errors=_SUB,
    ),
    Endpoint(
        "GET",
        "/api/sub/list/",
        subaccounts.list_sub_accounts,
        PageForm,
        "List your sub-accounts, a page at a time, by username (meshproxy extension)",
        body="SubAccountPage",
        errors=(400, 403),
        extension=True,
    ),
    Endpoint(
        "GET",
        "/api/sub/stats/",
        stats.account_stats,
        StatsForm,
        "Daily request statistics of your account or a sub-account: requests, outcomes, "
        "bytes and top destination hosts (meshproxy extension)",
        body="AccountStats",
        errors=_SUB,
        extension=True,
    ),
    Endpoint(
        "POST",
        "/api/ip/add/",
        access_lists.add_ip,
        IpForm,
        "Add an authenticated IP (to a sub-account with `username`)",
        body="Ip",
        errors=_ENTRY,
    ),
    Endpoint(
        "POST",
        "/api/ip/delete/",
        access_lists.delete_ip,
        IpForm,
        "Delete an authenticated IP; answers an empty 204",
        success=204,
        errors=_ENTRY,
    ),
    Endpoint(
        "GET",
        "/api/ips/",
        access_lists.list_ips,
        OptionalUsernameForm,
        "List authenticated IPs",
        body="Ips",
        errors=_ENTRY,
    ),
    Endpoint(
        "POST",
        "/api/hostname/add/",
        access_lists.add_hostname,
        HostnameForm,
        "Add an authenticated hostname (to a sub-account with `username`)",
        body="Domain",
        errors=_ENTRY,
    ),
    Endpoint(
        "POST",
        "/api/hostname/delete/",
        access_lists.delete_hostname,
        HostnameForm,
        "Delete an authenticated hostname; answers an empty 204",
        success=204,
        errors=_ENTRY,
    ),
    Endpoint(
        "GET",
        "/api/hostnames/",
        access_lists.list_hostnames,
        OptionalUsernameForm,
        "List authenticated hostnames",
        body="Domains",
        errors=_ENTRY,
    ),
    Endpoint(
        "GET",
        "/api/proxies/",
        proxies.list_proxies,
        None,
        "List the proxies your account is authorized for, as domain:port",
        body="Proxies",
        errors=(403,),
    ),
    Endpoint(
        "POST",
        "/api/proxy/add/",
        proxies.add_proxy,
        ProxyForm,
        "Authorize a proxy (adding one already authorized changes nothing)",
        body="Proxy",
        errors=(400, 402, 403, 503),
    ),
    Endpoint(
        "POST",
        "/api/proxy/delete/",
        proxies.delete_proxy,
        ProxyForm,
        "Remove a proxy authorization; answers an empty 204",
        success=204,
        errors=(400, 403),
    ),
    Endpoint(
        "GET",
        "/api/geoips/{name}/",
        proxies.geoips,
        None,
        "Country codes and IP counts of a geo proxy's egress pool (open, world, ...)",
        body="GeoIps",
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        "/api/webhook/add/",
        webhooks.add_webhook,
        WebhookForm,
        "Register a webhook for usage notices at 80 % and 100 % of a limit (meshproxy extension)",
        body="Webhook",
        errors=(400, 402, 403),
        extension=True,
    ),
    Endpoint(
        "GET",
        "/api/webhook/list/",
        webhooks.list_webhooks,
        None,
        "List your webhooks, without their secrets (meshproxy extension)",
        body="Webhooks",
        errors=(403,),
        extension=True,
    ),
    Endpoint(
        "POST",
        "/api/webhook/delete/",
        webhooks.delete_webhook,
        WebhookIdForm,
        "Delete a webhook; answers an empty 204 (meshproxy extension)",
        success=204,
        errors=(400, 403, 404),
        extension=True,
    ),
)
