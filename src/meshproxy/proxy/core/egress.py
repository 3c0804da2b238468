"""Egress choice: what a request leaves through.

A pool mixes three kinds of member (docs/egress.md): a local address (None: "don't bind;
the host's default source", either address family), a routed prefix (a random address
of it per request, bound with IP_FREEBIND) and an upstream proxy (http, https or socks5,
reached from the host's default source; it reaches either family).

Per request (per tunnel) at random from the proxy's pool, honouring the `X-ProxyMesh-*`
options: a pinned member when the pool has it (an address, an address of a prefix, or an
upstream's name; else another, reported as not found), excluded ones (the same names, or
a whole prefix), and a country on geo proxies. Upstreams that failed too often are left
out while any other candidate remains (health.py).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.health import EgressHealth
from meshproxy.proxy.core.options import RequestOptions
from meshproxy.proxy.core.sticky import StickySessions


@dataclass(frozen=True, slots=True)
class Upstream:
    """Another proxy that requests leave through."""

    scheme: str  # "http", "https" or "socks5" (config.UPSTREAM_SCHEMES)
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Egress:
    address: str | None
    country: str | None
    prefix: str | None = None  # a network, e.g. "2001:db8:5::/64"
    upstream: Upstream | None = None
    name: str | None = None  # an upstream's (what X-ProxyMesh-IP says for it)

    @property
    def family(self) -> int | None:
        if self.prefix is not None:
            return ipaddress.ip_network(self.prefix).version
        if self.address is None:
            return None
        return ipaddress.ip_address(self.address).version

    @property
    def label(self) -> str:
        """Its identity: the address, the prefix or the upstream's name ("" for the host's
        default source)."""
        return self.name or self.prefix or self.address or ""


@dataclass(frozen=True, slots=True)
class EgressChoice:
    address: str | None  # the source address to bind (None: the host's default)
    not_found: str | None = None  # the pinned IP that the pool does not have
    # The pool member, for a prefix (the address is one of it, bound with IP_FREEBIND)
    # and an upstream (connected through); None for a local address.
    egress: Egress | None = None
    # An address drawn at random from a prefix for this request alone: a connection from
    # it is never asked for again, so it is not kept idle (upstream.UpstreamPool).
    drawn: bool = False

    @property
    def poolable(self) -> bool:
        return not self.drawn

    @property
    def upstream(self) -> Upstream | None:
        return self.egress.upstream if self.egress is not None else None

    @property
    def freebind(self) -> bool:
        return self.egress is not None and self.egress.prefix is not None

    @property
    def key(self) -> str | None:
        """What identifies the way out in the upstream pool's key: connections through
        one upstream are never reused for another, nor for a direct connection."""
        upstream = self.upstream
        if upstream is not None:
            return "upstream:" + (self.egress.label if self.egress is not None else "")
        return self.address

    @property
    def shown(self) -> str | None:
        """What X-ProxyMesh-IP says when it is not the connection's own source address:
        an upstream's configured name."""
        return self.egress.label if self.upstream is not None and self.egress else None


class EgressPool:
    def __init__(
        self,
        addresses: Iterable[Egress],
        *,
        geo: bool,
        rng: random.Random | None = None,
        health: EgressHealth | None = None,
    ):
        self.members = tuple(addresses)
        if not self.members:
            raise ValueError("an egress pool needs at least one address")
        self.geo = geo
        self.sessions = StickySessions()  # X-ProxyMesh-Session / username `session`
        self._rng = rng or random.Random()
        self.health = health or EgressHealth()
        self._by_family = {
            family: tuple(e for e in self.members if e.family in (None, family))
            for family in (4, 6)
        }
        self._networks = {
            e: ipaddress.ip_network(e.prefix) for e in self.members if e.prefix is not None
        }
        self._names = {e.label for e in self.members if e.label}
        self.countries = frozenset(e.country for e in self.members if e.country)
        self._choices: dict[int, tuple[EgressChoice | Egress, ...]] = {}
        self._health_version = -1
        self._refresh()

    def _refresh(self) -> None:
        """The plain random choice hands out these shared (immutable) answers: none is
        built per request (but for a prefix's address). Rebuilt when health changes."""
        self._health_version = self.health.version
        self._choices = {
            family: tuple(
                e if e.prefix is not None
                else EgressChoice(e.address, egress=e if e.upstream is not None else None)
                for e in self._healthy(members)
            )
            for family, members in self._by_family.items()
        }

    def _healthy(self, candidates: tuple[Egress, ...]) -> tuple[Egress, ...]:
        """The candidates that are up; all of them when none is (better a try than a 502)."""
        up = tuple(e for e in candidates if self.health.is_up(e))
        return up or candidates

    def choose(
        self, options: RequestOptions, family: int, *, avoid: Egress | None = None
    ) -> EgressChoice | ProxyError:
        """An egress for a destination of `family` (4 or 6); `avoid`: not this member
        (a retry after it failed) while another candidate remains."""
        if options.is_default and avoid is None:
            if self._health_version != self.health.version:
                self._refresh()
            choices = self._choices[family]
            if not choices:
                return errors.no_egress(f"this proxy has no IPv{family} egress address")
            # random() scaled, not choice(): one C call instead of three Python ones.
            picked = choices[int(self._rng.random() * len(choices))]
            return picked if isinstance(picked, EgressChoice) else self._of(picked, options)
        candidates = self._by_family[family]
        if not candidates:
            return errors.no_egress(f"this proxy has no IPv{family} egress address")
        if options.country and self.geo:
            if options.country not in self.countries:
                return errors.bad_option(f"no egress IP in country {options.country} on this proxy")
            candidates = tuple(e for e in candidates if e.country == options.country)
        if options.not_ips:
            candidates = tuple(e for e in candidates if not self._excluded(e, options.not_ips))
        if not candidates:
            return errors.bad_option("no egress IP left after X-ProxyMesh-* restrictions")
        pinned = options.ip
        if pinned is None and options.session is not None:  # a sticky session (sticky.py)
            members = self._healthy(candidates)
            if avoid is not None:  # it failed: the session's next choice, on every node
                members = tuple(e for e in members if e != avoid) or members
            member = self.sessions.choose(options, members)
            if member.prefix is not None:  # and an address of it for the whole session
                return EgressChoice(self._session_address(member, options), egress=member)
            return self._of(member, options)
        if pinned is not None and avoid is None:
            for egress in candidates:
                if egress.label == pinned:
                    return self._of(egress, options)
                network = self._networks.get(egress)
                if network is not None and _within(pinned, network):
                    return EgressChoice(pinned, egress=egress)
            return self._of(self._pick(candidates, avoid), options, not_found=self._unknown(pinned))
        return self._of(self._pick(candidates, avoid), options)

    def member(self, choice: EgressChoice) -> Egress | None:
        """The pool member `choice` leaves through (a local address's is found by it)."""
        if choice.egress is not None:
            return choice.egress
        return next((e for e in self.members if e.address == choice.address), None)

    def _pick(self, candidates: tuple[Egress, ...], avoid: Egress | None) -> Egress:
        if avoid is not None and len(candidates) > 1:
            candidates = tuple(e for e in candidates if e != avoid) or candidates
        return self._rng.choice(self._healthy(candidates))

    def _of(
        self, egress: Egress, options: RequestOptions, not_found: str | None = None
    ) -> EgressChoice:
        if egress.prefix is not None:
            address = self._address_in(egress, options.not_ips)
            return EgressChoice(address, not_found, egress, drawn=True)
        return EgressChoice(
            egress.address, not_found, egress if egress.upstream is not None else None
        )

    def _address_in(self, egress: Egress, not_ips: frozenset[str]) -> str:
        """A random address of the prefix, never an excluded one, nor its first (the
        subnet-router anycast address, or an IPv4 network address) nor an IPv4
        broadcast address."""
        network = self._networks[egress]
        usable = _usable(network)
        if _small(usable):
            return str(self._rng.choice([a for a in _listed(network, usable)
                                         if a not in not_ips] or _listed(network, usable)))
        while True:  # a few excluded addresses out of millions: one draw, nearly always
            address = str(network[self._rng.randrange(usable.start, usable.stop)])
            if address not in not_ips:
                return address

    def _session_address(self, egress: Egress, options: RequestOptions) -> str:
        """The address of a prefix a sticky session keeps (derived, as the member is)."""
        network = self._networks[egress]
        usable = _usable(network)
        weight = self.sessions.address_weight(options, egress.label)
        address = str(network[usable.start + weight % (usable.stop - usable.start)])
        if address in options.not_ips:
            return self._address_in(egress, options.not_ips)
        return address

    def _excluded(self, egress: Egress, not_ips: frozenset[str]) -> bool:
        if egress.label in not_ips:
            return True
        network = self._networks.get(egress)
        if network is None or not _small(_usable(network)):
            return False
        # A small prefix is left out when every address of it is.
        return all(a in not_ips for a in _listed(network, _usable(network)))

    def _unknown(self, pinned: str) -> str | None:
        """`pinned` when no member of the pool answers to it (X-ProxyMesh-IP-Not-Found)."""
        if pinned in self._names:
            return None
        if any(_within(pinned, network) for network in self._networks.values()):
            return None
        return pinned


SMALL_PREFIX: Final = 256  # addresses; a smaller prefix's are listed, a larger one's drawn


def _usable(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> range:
    size = network.num_addresses
    if size <= 2:
        return range(size)
    return range(1, size - 1 if network.version == 4 else size)


def _small(usable: range) -> bool:
    return usable.stop - usable.start <= SMALL_PREFIX


def _listed(network: ipaddress.IPv4Network | ipaddress.IPv6Network, usable: range) -> list[str]:
    return [str(network[i]) for i in usable]


def _within(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:  # a name, not an address
        return False


def not_honoured(not_ips: frozenset[str], local_ip: str) -> str | None:
    """The excluded address a request left from all the same (None: none): an
    `X-ProxyMesh-Not-IP` naming the address of a pool member the pool knows only as "the
    host's default source" (`egress = [{}]`), so it could not leave that member out. The
    answer says so in `X-ProxyMesh-Not-IP-Ignored` instead of ignoring it silently."""
    if not not_ips or not local_ip:
        return None
    address = local_ip[7:] if local_ip.startswith("::ffff:") and "." in local_ip else local_ip
    return address if address in not_ips else None
