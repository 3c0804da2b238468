"""Two tenants for the cross-tenant tests: parents A and B, each with sub-accounts holding
IPs and hostnames, and a snapshot of everything they own (read from the store), so a test
can show that a refused attempt changed nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshproxy.store import Store


@dataclass(frozen=True)
class Tenants:
    a: str  # parent A (the attacker's parent)
    a_sub: str
    b: str  # parent B (the victim)
    b_sub: str  # active, with an IP and a hostname
    b_off: str  # deactivated, with an IP
    b_sub_ip: str
    b_sub_host: str
    b_off_ip: str
    b_ip: str  # B's own
    b_host: str

    @property
    def usernames(self) -> tuple[str, ...]:
        return (self.a, self.a_sub, self.b, self.b_sub, self.b_off)


def snapshot(store: Store, tenants: Tenants) -> dict[str, Any]:
    """Everything both tenants own: accounts (names, limits, password hash, active),
    IPs, hostnames, authorized proxies, how many sub-accounts each parent has, and its
    webhooks."""
    state: dict[str, Any] = {}
    for username in tenants.usernames:
        account = store.accounts.get(username)
        assert account is not None, f"{username} was deleted"
        state[username] = (
            account,
            sorted(store.access.list_ips(account)),
            sorted(store.access.list_hostnames(account)),
            sorted(store.access.authorized_proxies(account)),
            store.accounts.count_sub_accounts(account.id) if account.is_parent else None,
            store.alerts.list_webhooks(account.id),
        )
    return state


def populate(store: Store, tenants: Tenants) -> None:
    """The IPs and hostnames of `tenants` (the accounts exist already)."""
    for username, ip, host in (
        (tenants.b_sub, tenants.b_sub_ip, tenants.b_sub_host),
        (tenants.b, tenants.b_ip, tenants.b_host),
        (tenants.b_off, tenants.b_off_ip, None),
    ):
        account = store.accounts.get(username)
        assert account is not None
        store.access.add_ip(account, ip)
        if host:
            store.access.add_hostname(account, host)
    off = store.accounts.update(tenants.b_off, active=False)
    assert off is not None and not off.active
