"""Egress choice: which source address a request leaves from.

Per request (per tunnel) at random from the proxy's pool, honouring the
`X-ProxyMesh-*` options: a pinned IP when the pool has it (else another, reported as
not found), excluded IPs, and a country on geo proxies. An address of None in the pool
means "don't bind; the host's default source" and suits either address family.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import RequestOptions


@dataclass(frozen=True, slots=True)
class Egress:
    address: str | None
    country: str | None

    @property
    def family(self) -> int | None:
        if self.address is None:
            return None
        return ipaddress.ip_address(self.address).version


@dataclass(frozen=True, slots=True)
class EgressChoice:
    address: str | None  # None: the host's default source address
    not_found: str | None = None  # the pinned IP that the pool does not have


class EgressPool:
    def __init__(self, addresses: Iterable[Egress], *, geo: bool, rng: random.Random | None = None):
        self.members = tuple(addresses)
        if not self.members:
            raise ValueError("an egress pool needs at least one address")
        self.geo = geo
        self._rng = rng or random.Random()
        self._by_family = {
            family: tuple(e for e in self.members if e.family in (None, family))
            for family in (4, 6)
        }
        # The plain random choice hands out these shared (immutable) answers: none is
        # built per request.
        self._choices = {
            family: tuple(EgressChoice(e.address) for e in members)
            for family, members in self._by_family.items()
        }
        self._addresses = {e.address for e in self.members if e.address is not None}
        self.countries = frozenset(e.country for e in self.members if e.country)

    def choose(self, options: RequestOptions, family: int) -> EgressChoice | ProxyError:
        """An egress for a destination of `family` (4 or 6)."""
        if options.is_default:
            choices = self._choices[family]
            if not choices:
                return errors.no_egress(f"this proxy has no IPv{family} egress address")
            return self._rng.choice(choices)
        candidates = self._by_family[family]
        if options.country and self.geo:
            if options.country not in self.countries:
                return errors.bad_option(f"no egress IP in country {options.country} on this proxy")
            candidates = tuple(e for e in candidates if e.country == options.country)
        if options.not_ips:
            candidates = tuple(e for e in candidates if e.address not in options.not_ips)
        if not candidates:
            return errors.bad_option("no egress IP left after X-ProxyMesh-* restrictions")
        pinned = options.ip
        if pinned is not None:
            for egress in candidates:
                if egress.address == pinned:
                    return EgressChoice(pinned)
            not_found = None if pinned in self._addresses else pinned
            return EgressChoice(self._rng.choice(candidates).address, not_found)
        return EgressChoice(self._rng.choice(candidates).address)
