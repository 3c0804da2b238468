"""Admission: whether a request or tunnel may go, and where, for every front end.

The HTTP proxy (server/connection.py) and the SOCKS5 listener (server/socks.py) feed the
same steps in the same order and carry out the same decisions; only the wording of a
refusal differs (an HTTP response, or a SOCKS reply code: `socks5.reply_code`).

1. `standing`: the directory's answer for the credentials (407, a ban's 403) and the
   account's standing on this listener (402 deactivated, 403 not on this proxy, 509
   over quota) -> the account, or `Refuse`.
2. `destination`: the addresses of the target host -> `Resolve` while they are not known,
   then the destination policy (403) and the egress choice per address family (502 when
   none fits) -> `Connect` (this address through this egress), or `Refuse`.
3. `unresolved`: the name did not resolve -> `Refuse` (502).

Pure: the driver resolves, connects and answers; nothing here blocks or allocates beyond
the decision itself (none at all for an account admitted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.egress import EgressChoice, EgressPool
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import RequestOptions
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.core.target import routed


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer `error` (HTTP) or its reply code (SOCKS5), send nothing upstream."""

    error: ProxyError


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolve `host`, then ask `destination` again with its addresses."""

    host: str


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~0.2 µs per request
class Connect:
    """Connect to `address` (routed: an IPv4-mapped literal is IPv4) through `egress`."""

    address: str
    egress: EgressChoice


Decision = Refuse | Resolve | Connect


class Directory(Protocol):
    """What admission asks of the accounts (core/directory.Directory)."""

    def decide(self, account: AccountState, proxy: str) -> ProxyError | None: ...


def standing(
    answer: AccountState | ProxyError, directory: Directory, listener: str
) -> AccountState | Refuse:
    """The account a request may go on for, from the directory's `answer` to its
    credentials (or client IP), or the refusal: the credentials' own (407, a banned
    IP's 403), else the account's on `listener` (402, 403, 509)."""
    if isinstance(answer, ProxyError):
        return Refuse(answer)
    refusal = directory.decide(answer, listener)
    return answer if refusal is None else Refuse(refusal)


def destination(
    host: str,
    addresses: Sequence[str] | None,
    policy: DestinationPolicy,
    pool: EgressPool,
    options: RequestOptions,
) -> Decision:
    """Where `host` goes: `Resolve` while its `addresses` are unknown (None); else the
    first address the policy permits that the pool has an egress of its family for, or
    why not (403: none permitted; the pool's refusal, 502 when no family fits)."""
    if addresses is None:
        return Resolve(host)
    if not addresses:
        return unresolved(host)
    refusal: ProxyError | None = None
    for address in addresses:
        if not policy.permits(address):
            continue
        address = routed(address)
        choice = pool.choose(options, 6 if ":" in address else 4)
        if isinstance(choice, EgressChoice):
            return Connect(address, choice)
        refusal = choice
        if choice.status != 502:  # a refusal of the options (an unknown pinned IP...)
            break
    return Refuse(errors.destination_refused(addresses[0]) if refusal is None else refusal)


def unresolved(host: str) -> Refuse:
    return Refuse(errors.dns_failed(host))
