"""Authenticated IPs and hostnames: add, delete, list, for the caller or one of its
sub-accounts. Both are globally unique (one address must mean one account), so the two
kinds share one implementation, parameterised by `_Kind`."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from meshproxy.config import Settings
from meshproxy.control.common import Data, change, operation, target_account, validated
from meshproxy.control.errors import FormInvalid
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.addresses import hostname_address_refused, networks, normalise_ip
from meshproxy.domain.forms import Form, HostnameForm, IpForm, OptionalUsernameForm
from meshproxy.store import Store
from meshproxy.store.errors import Conflict


@dataclass(frozen=True)
class _Kind:
    form: type[Form]
    field: str  # the parameter, and the key of the add answer
    list_key: str  # the key of the list answer
    taken: str
    missing: str
    add: Callable[[Store, AccountRecord, str], None]
    delete: Callable[[Store, AccountRecord, str], bool]
    list: Callable[[Store, AccountRecord], list[str]]


_IP = _Kind(
    IpForm,
    "ip",
    "ips",
    taken="This IP address is already authenticated.",
    missing="This IP address is not authenticated.",
    add=lambda store, account, value: store.access.add_ip(account, value),
    delete=lambda store, account, value: store.access.delete_ip(account, value),
    list=lambda store, account: store.access.list_ips(account),
)
_HOSTNAME = _Kind(
    HostnameForm,
    "domain",
    "domains",
    taken="This hostname is already authenticated.",
    missing="This hostname is not authenticated.",
    add=lambda store, account, value: store.access.add_hostname(account, value),
    delete=lambda store, account, value: store.access.delete_hostname(account, value),
    list=lambda store, account: store.access.list_hostnames(account),
)


def resolve(hostname: str) -> tuple[str, ...]:
    """The addresses `hostname` resolves to now (none: it does not resolve yet)."""
    try:
        infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    found = (normalise_ip(str(info[4][0])) for info in infos)
    return tuple(dict.fromkeys(a for a in found if a is not None))


def _vet_hostname(settings: Settings, store: Store, account: AccountRecord, hostname: str) -> None:
    """Refuse a hostname that resolves to an address that must not authenticate: a
    non-public one (unless `[proxy] allow_hostname_networks` allows it) or one another
    account holds as an IP. The proxies apply the same rule at every re-resolution (and
    give an address two accounts' hostnames share to the hostname added first); a name
    that does not resolve yet is accepted and judged when it does."""
    addresses = resolve(hostname)
    allowed = networks(settings.proxy.allow_hostname_networks)
    for address in addresses:
        why = hostname_address_refused(address, allowed)
        if why is not None:
            raise FormInvalid.one(
                "domain",
                f"This hostname resolves to {address}, a {why} address, which cannot "
                "authenticate clients.",
            )
    for address, holder in store.access.ip_holders(addresses).items():
        if holder != account.id:
            raise FormInvalid.one(
                "domain",
                f"This hostname resolves to {address}, an IP address another account "
                "has authenticated.",
            )


def _add(
    kind: _Kind,
    store: Store,
    caller: AccountRecord,
    data: Mapping[str, str],
    vet: Callable[[Store, AccountRecord, str], None] | None = None,
) -> dict[str, str]:
    cleaned = validated(kind.form, data)
    account = target_account(store, caller, cleaned.get("username"))
    value = cleaned[kind.field]
    if vet is not None:
        vet(store, account, value)
    try:
        kind.add(store, account, value)
    except Conflict:  # held by this or any other account
        raise FormInvalid.one(kind.field, kind.taken) from None
    return {kind.field: value}


def _delete(kind: _Kind, store: Store, caller: AccountRecord, data: Mapping[str, str]) -> None:
    cleaned = validated(kind.form, data)
    account = target_account(store, caller, cleaned.get("username"))
    if not kind.delete(store, account, cleaned[kind.field]):
        raise FormInvalid.one(kind.field, kind.missing)


def _list(
    kind: _Kind, store: Store, caller: AccountRecord, data: Mapping[str, str]
) -> dict[str, list[str]]:
    cleaned = validated(OptionalUsernameForm, data)
    return {kind.list_key: kind.list(store, target_account(store, caller, cleaned.get("username")))}


@change("ip.add")
def add_ip(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, str]:
    return _add(_IP, store, caller, data)


@change("ip.delete")
def delete_ip(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> None:
    _delete(_IP, store, caller, data)


@operation
def list_ips(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, list[str]]:
    return _list(_IP, store, caller, data)


@change("hostname.add")
def add_hostname(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, str]:
    return _add(
        _HOSTNAME,
        store,
        caller,
        data,
        vet=lambda store, account, hostname: _vet_hostname(settings, store, account, hostname),
    )


@change("hostname.delete")
def delete_hostname(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> None:
    _delete(_HOSTNAME, store, caller, data)


@operation
def list_hostnames(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> dict[str, list[str]]:
    return _list(_HOSTNAME, store, caller, data)
