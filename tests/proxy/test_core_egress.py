"""Egress choice and the destination policy, without sockets."""

from __future__ import annotations

import random

from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import NO_OPTIONS, RequestOptions
from meshproxy.proxy.core.policy import DestinationPolicy

POOL = [Egress(f"10.0.0.{i}", "US" if i < 5 else "DE") for i in range(1, 9)]


def pool(geo: bool = True, members: list[Egress] = POOL) -> EgressPool:
    return EgressPool(members, geo=geo, rng=random.Random(7))


def chosen(p: EgressPool, options: RequestOptions = NO_OPTIONS, family: int = 4) -> EgressChoice:
    result = p.choose(options, family)
    assert isinstance(result, EgressChoice), result
    return result


def test_random_choice_covers_the_pool() -> None:
    p = pool()
    seen = {chosen(p).address for _ in range(400)}
    assert seen == {e.address for e in POOL}


def test_pinning_and_not_found() -> None:
    p = pool()
    assert chosen(p, RequestOptions(ip="10.0.0.3")) == EgressChoice("10.0.0.3")
    missing = chosen(p, RequestOptions(ip="192.0.2.1"))
    assert missing.not_found == "192.0.2.1" and missing.address in {e.address for e in POOL}


def test_exclusion_and_country() -> None:
    p = pool()
    allowed = {f"10.0.0.{i}" for i in (1, 2)}
    excluded = frozenset({"10.0.0.3", "10.0.0.4"})
    for _ in range(50):
        assert chosen(p, RequestOptions(country="US", not_ips=excluded)).address in allowed
    everything = frozenset(e.address for e in POOL if e.address)
    error = p.choose(RequestOptions(not_ips=everything), 4)
    assert isinstance(error, ProxyError) and error.status == 400


def test_unknown_country_is_a_clear_refusal_on_geo_proxies_only() -> None:
    error = pool().choose(RequestOptions(country="ZZ"), 4)
    assert isinstance(error, ProxyError) and error.status == 400 and "ZZ" in error.reason
    assert chosen(pool(geo=False), RequestOptions(country="ZZ")).address is not None


def test_address_families() -> None:
    mixed = pool(members=[Egress("10.0.0.1", None), Egress("fd00::1", None)])
    assert chosen(mixed, family=6).address == "fd00::1"
    assert chosen(mixed, family=4).address == "10.0.0.1"
    default = pool(members=[Egress(None, None)])
    assert chosen(default, family=6).address is None
    error = pool().choose(NO_OPTIONS, 6)
    assert isinstance(error, ProxyError) and error.status == 502


def test_destination_policy() -> None:
    closed = DestinationPolicy()
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.1.1", "::1", "fe80::1",
                    "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1", "100.64.0.1", "not an ip"):
        assert not closed.permits(address), address
    assert closed.permits("93.184.216.34") and closed.permits("2606:2800:220:1::1")
    opened = DestinationPolicy(["127.0.0.0/8", "::1/128"])
    assert opened.permits("127.0.0.1") and opened.permits("::1")
    assert opened.permits("::ffff:127.0.0.1") and not opened.permits("10.0.0.1")
