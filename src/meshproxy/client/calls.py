"""Every API endpoint as an exchange: the request(s) it makes and the typed value it returns.

The clients expose each function here as a method of the same name and signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import quote

from meshproxy.client.errors import UnexpectedBody
from meshproxy.client.models import DayStats, SubAccount, SubAccountPage
from meshproxy.client.protocol import Exchange, Request

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100


def _fields(**values: str | int | None) -> dict[str, str]:
    """Form fields; None means "not sent" (on edit: leave unchanged)."""
    return {name: str(value) for name, value in values.items() if value is not None}


def _one(request: Request, convert: Callable[[Any], T]) -> Exchange[T]:
    data = yield request
    return convert(data)


def _nothing(data: Any) -> None:
    return None


def _key(name: str, item: Callable[[Any], T]) -> Callable[[Any], T]:
    """Convert the body {name: value}."""

    def convert(data: Any) -> T:
        if not isinstance(data, Mapping) or name not in data:
            raise UnexpectedBody(f"expected a JSON object with {name!r}, got {data!r}")
        return item(data[name])

    return convert


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise UnexpectedBody(f"expected a list, got {value!r}")
    return [str(item) for item in value]


def _counts(data: Any) -> dict[str, int]:
    if not isinstance(data, Mapping):
        raise UnexpectedBody(f"expected a JSON object of counts, got {data!r}")
    return {str(code): int(count) for code, count in data.items()}


def request(method: str, path: str, fields: Mapping[str, str] | None = None) -> Exchange[Any]:
    """Any request, low level: the decoded JSON body (None when empty), or the error raised."""
    return _one(Request(method.upper(), path, dict(fields or {})), lambda data: data)


class SubAccountFields(TypedDict, total=False):
    """Optional fields of create and edit; an absent field or None is not sent."""

    password: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    monthly_limit: int | None  # whole GB, 0 = no limit
    total_limit: int | None


def create_sub_account(username: str, **fields: Unpack[SubAccountFields]) -> Exchange[SubAccount]:
    """Create a sub-account (limits in whole GB, 0 = no limit); 402 when the plan is full."""
    form = _fields(username=username, **fields)
    return _one(Request("POST", "/api/sub/create/", form), SubAccount.from_json)


def edit_sub_account(username: str, **fields: Unpack[SubAccountFields]) -> Exchange[SubAccount]:
    """Edit a sub-account: absent fields are left unchanged, "" clears a name or the email."""
    form = _fields(username=username, **fields)
    return _one(Request("POST", "/api/sub/edit/", form), SubAccount.from_json)


def get_sub_account(username: str) -> Exchange[SubAccount]:
    """A sub-account's details: usage and limits in GB."""
    return _one(Request("GET", "/api/sub/get/", _fields(username=username)), SubAccount.from_json)


def deactivate(username: str) -> Exchange[SubAccount]:
    """Deactivate a sub-account: its proxy requests get 402 until it is activated again."""
    return _one(
        Request("POST", "/api/sub/deactivate/", _fields(username=username)), SubAccount.from_json
    )


def activate(username: str) -> Exchange[SubAccount]:
    """Activate a deactivated sub-account."""
    return _one(
        Request("POST", "/api/sub/activate/", _fields(username=username)), SubAccount.from_json
    )


def delete_sub_account(username: str) -> Exchange[None]:
    """Delete a sub-account and all its data, for good."""
    return _one(Request("POST", "/api/sub/delete/", _fields(username=username)), _nothing)


def list_sub_accounts(
    *, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE
) -> Exchange[SubAccountPage]:
    """One page of your sub-accounts by username (meshproxy extension: GET /api/sub/list/)."""
    fields = _fields(offset=offset, limit=limit)
    return _one(Request("GET", "/api/sub/list/", fields), SubAccountPage.from_json)


def account_stats(username: str | None = None, *, days: int = 30) -> Exchange[list[DayStats]]:
    """Your account's (or a sub-account's) request statistics of each of the last `days`
    days, oldest first (meshproxy extension: GET /api/sub/stats/)."""
    fields = _fields(username=username, days=days)
    days_of = _key("days", lambda items: [DayStats.from_json(item) for item in items])
    return _one(Request("GET", "/api/sub/stats/", fields), days_of)


def all_sub_accounts(*, page_size: int = DEFAULT_PAGE_SIZE) -> Exchange[list[SubAccount]]:
    """Every sub-account, page after page (meshproxy extension)."""
    accounts: list[SubAccount] = []
    offset: int | None = 0
    while offset is not None:
        page = yield from list_sub_accounts(offset=offset, limit=page_size)
        accounts.extend(page.sub_accounts)
        offset = page.next_offset
    return accounts


def add_ip(ip: str, *, username: str | None = None) -> Exchange[str]:
    """Authenticate an IP for your account or a sub-account's; returns it as the server
    normalised it. 400 if any account already has it."""
    fields = _fields(ip=ip, username=username)
    return _one(Request("POST", "/api/ip/add/", fields), _key("ip", str))


def delete_ip(ip: str, *, username: str | None = None) -> Exchange[None]:
    """Remove an authenticated IP; 400 if it was not authenticated."""
    return _one(Request("POST", "/api/ip/delete/", _fields(ip=ip, username=username)), _nothing)


def list_ips(*, username: str | None = None) -> Exchange[list[str]]:
    """Authenticated IPs of your account, or of a sub-account."""
    return _one(Request("GET", "/api/ips/", _fields(username=username)), _key("ips", _strings))


def add_hostname(domain: str, *, username: str | None = None) -> Exchange[str]:
    """Authenticate a hostname (its addresses authenticate the account); 400 if taken."""
    fields = _fields(domain=domain, username=username)
    return _one(Request("POST", "/api/hostname/add/", fields), _key("domain", str))


def delete_hostname(domain: str, *, username: str | None = None) -> Exchange[None]:
    """Remove an authenticated hostname; 400 if it was not authenticated."""
    fields = _fields(domain=domain, username=username)
    return _one(Request("POST", "/api/hostname/delete/", fields), _nothing)


def list_hostnames(*, username: str | None = None) -> Exchange[list[str]]:
    """Authenticated hostnames of your account, or of a sub-account."""
    fields = _fields(username=username)
    return _one(Request("GET", "/api/hostnames/", fields), _key("domains", _strings))


def proxies() -> Exchange[list[str]]:
    """The proxies your account may use, as "domain:port"."""
    return _one(Request("GET", "/api/proxies/"), _key("proxies", _strings))


def add_proxy(proxy: str) -> Exchange[str]:
    """Authorize a proxy ("host", "host.domain" or "host.domain:port"); returns its domain.
    400 if unknown, 402 over the plan's proxy count, 503 if the plan cannot be looked up."""
    return _one(Request("POST", "/api/proxy/add/", _fields(proxy=proxy)), _key("proxy", str))


def delete_proxy(proxy: str) -> Exchange[None]:
    """Remove a proxy authorization; 400 if the name is unknown."""
    return _one(Request("POST", "/api/proxy/delete/", _fields(proxy=proxy)), _nothing)


def geoips(name: str) -> Exchange[dict[str, int]]:
    """Egress IP counts by ISO country code of a geo proxy ("open" or "world")."""
    return _one(Request("GET", f"/api/geoips/{quote(name, safe='')}/"), _counts)
