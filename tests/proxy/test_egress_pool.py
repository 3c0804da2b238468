"""Egress pools that mix local addresses, routed prefixes and upstream proxies: the
configuration's validation and the pool's choice, without sockets."""

from __future__ import annotations

import dataclasses
import ipaddress
import random

import pytest

from meshproxy.config import ConfigError, ProxyBehaviour, ProxyConfig, checked, load_settings
from meshproxy.control import proxies
from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool, Upstream
from meshproxy.proxy.core.health import EgressHealth
from meshproxy.proxy.core.options import NO_OPTIONS, RequestOptions, parse_options
from meshproxy.proxy.server.node import egress_pool
from meshproxy.store import Store

PREFIX = "2001:db8:5::/64"
MIXED = [
    {"address": "127.0.0.2", "country": "US"},
    {"prefix": PREFIX, "country": "DE"},
    {"upstream": "http://user:p%40ss@127.0.0.9:3128", "country": "US", "name": "us-1"},
    {"upstream": "socks5://127.0.0.10:1080", "country": "FR"},
    {"upstream": "https://proxy.example.net:443"},
]


def proxy(egress: list[dict[str, str]], **extra: object) -> ProxyConfig:
    return checked(ProxyConfig, {"name": "open", "geo": True, "egress": egress, **extra})


def mixed_pool(seed: int = 3) -> EgressPool:
    pool = egress_pool(proxy(MIXED), ProxyBehaviour())
    pool._rng = random.Random(seed)
    return pool


def chosen(pool: EgressPool, options: RequestOptions = NO_OPTIONS, family: int = 4,
           **kwargs: Egress) -> EgressChoice:
    result = pool.choose(options, family, **kwargs)
    assert isinstance(result, EgressChoice), result
    return result


def test_entries_of_every_kind_in_one_pool() -> None:
    pool = mixed_pool()
    by_label = {e.label: e for e in pool.members}
    assert set(by_label) == {"127.0.0.2", PREFIX, "us-1", "127.0.0.10:1080",
                             "proxy.example.net:443"}
    assert by_label["us-1"].upstream == Upstream("http", "127.0.0.9", 3128, "user", "p@ss")
    assert "p@ss" not in repr(by_label["us-1"])  # never in a log line
    assert by_label["127.0.0.10:1080"].upstream == Upstream("socks5", "127.0.0.10", 1080)
    assert by_label[PREFIX].family == 6 and by_label["us-1"].family is None
    # IPv4 destinations: the address and the three upstreams; IPv6: the prefix and upstreams.
    seen4 = {chosen(pool).key for _ in range(300)}
    assert seen4 == {"127.0.0.2", "upstream:us-1", "upstream:127.0.0.10:1080",
                     "upstream:proxy.example.net:443"}
    seen6 = {chosen(pool, family=6).egress for _ in range(300)}
    assert {e.label for e in seen6 if e is not None} == {PREFIX, "us-1", "127.0.0.10:1080",
                                                         "proxy.example.net:443"}


def test_a_prefix_gives_a_random_address_of_it_per_request() -> None:
    pool = EgressPool([Egress(None, None, prefix=PREFIX)], geo=False, rng=random.Random(1))
    network = ipaddress.ip_network(PREFIX)
    choices = [chosen(pool, family=6) for _ in range(200)]
    assert all(ipaddress.ip_address(c.address) in network for c in choices if c.address)
    assert len({c.address for c in choices}) == 200
    assert all(c.freebind and c.key == c.address and c.shown is None for c in choices)
    assert str(network[0]) not in {c.address for c in choices}
    # X-ProxyMesh-IP: an address of the prefix is the pool's: used as is, not "not found".
    pinned = chosen(pool, RequestOptions(ip="2001:db8:5::abcd"), family=6)
    assert pinned.address == "2001:db8:5::abcd" and pinned.not_found is None
    # X-ProxyMesh-Not-IP: that address is never handed out; the prefix itself: all of it.
    tiny = EgressPool([Egress(None, None, prefix="2001:db8:5::/126"),
                       Egress("::1", None)], geo=False, rng=random.Random(2))
    barred = frozenset({"2001:db8:5::1", "2001:db8:5::2"})
    assert {chosen(tiny, RequestOptions(not_ips=barred), family=6).address
            for _ in range(100)} == {"2001:db8:5::3", "::1"}
    assert {chosen(tiny, RequestOptions(not_ips=frozenset({"2001:db8:5::/126"})),
                   family=6).address for _ in range(20)} == {"::1"}


def test_ip_options_name_upstreams() -> None:
    pool = mixed_pool()
    options = parse_options([("ip", b"us-1")])
    for _ in range(20):
        choice = chosen(pool, options)
        assert choice.shown == "us-1" and choice.key == "upstream:us-1" and choice.not_found is None
        assert choice.upstream is not None and choice.upstream.port == 3128
    # Not-IP takes names (and addresses) in one comma-separated list.
    options = parse_options([("not-ip", b"us-1, 127.0.0.10:1080,127.0.0.2")])
    assert {chosen(pool, options).shown for _ in range(50)} == {"proxy.example.net:443"}
    missing = chosen(pool, parse_options([("ip", b"eu-9")]))
    assert missing.not_found == "eu-9"
    # A country narrows upstreams too.
    assert {chosen(pool, RequestOptions(country="FR")).shown for _ in range(20)} == {
        "127.0.0.10:1080"}


def test_down_upstreams_leave_the_rotation_until_they_succeed() -> None:
    pool = mixed_pool()
    us1 = next(e for e in pool.members if e.label == "us-1")
    health = pool.health
    for _ in range(health.max_failures - 1):
        health.failed(us1, "refused", now=0.0)
    assert any(chosen(pool).shown == "us-1" for _ in range(100))  # not yet out
    health.failed(us1, "refused", now=0.0)
    assert all(chosen(pool).shown != "us-1" for _ in range(200))
    assert all(chosen(pool, RequestOptions(country="US")).key == "127.0.0.2" for _ in range(50))
    # When nothing else is left it is still tried (better than a 502 with no attempt).
    assert chosen(pool, RequestOptions(ip="us-1")).shown == "us-1"
    only = chosen(pool, parse_options([("not-ip", b"127.0.0.2,127.0.0.10:1080,"
                                                   b"proxy.example.net:443")]))
    assert only.shown == "us-1"
    health.succeeded(us1, 0.01, now=1.0, probe=True)
    assert any(chosen(pool).shown == "us-1" for _ in range(100))


def test_a_retry_avoids_the_egress_that_failed() -> None:
    pool = mixed_pool()
    us1 = next(e for e in pool.members if e.label == "us-1")
    assert all(chosen(pool, avoid=us1).shown != "us-1" for _ in range(100))
    lone = EgressPool([us1], geo=False)
    assert chosen(lone, avoid=us1).shown == "us-1"  # nothing else: the same one again


def test_probes_back_off_while_an_upstream_stays_out() -> None:
    health = EgressHealth(max_failures=2, interval=1.0, max_backoff=5.0)
    member = "up"
    assert health.due([member], 0.0) == [member]
    health.succeeded(member, 0.1, 0.0, probe=True)
    assert health.due([member], 0.5) == [] and health.due([member], 1.0) == [member]
    health.failed(member, "x", 1.0, probe=True)
    assert health.is_up(member)
    health.failed(member, "x", 2.0, probe=True)
    assert not health.is_up(member)
    probes = []
    now = 2.0
    for _ in range(5):
        now = health.states[member].next_probe
        probes.append(now)
        health.failed(member, "x", now, probe=True)
    gaps = [b - a for a, b in zip([2.0, *probes], probes, strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 5.0, 5.0]
    health.succeeded(member, 0.2, now, probe=True)
    assert health.is_up(member) and health.states[member].failures == 0
    assert health.states[member].failures_total == 7


def _invalid(egress: list[dict[str, str]]) -> str:
    with pytest.raises(ConfigError) as error:
        load_settings(None, proxies=[{"name": "open", "egress": egress}])
    return str(error.value)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"prefix": "2001:db8:5::1/64"}, "has host bits set"),
        ({"prefix": "nonsense"}, "must be a network such as 2001:db8:5::/64"),
        ({"upstream": "ftp://h:21"}, "starts with http://, https:// or socks5://"),
        ({"upstream": "http://h"}, "needs a port"),
        ({"upstream": "http://h:99999"}, "port must be a number"),
        ({"upstream": "http://:3128"}, "names no host"),
        ({"upstream": "http://h:3128/path"}, "nothing after"),
        ({"upstream": "socks5://" + "u" * 256 + ":p@h:1080"}, "at most 255 bytes"),
        ({"address": "127.0.0.2", "prefix": PREFIX}, "not address and prefix"),
        ({"address": "127.0.0.2", "name": "x"}, "name is for upstream entries"),
        ({"upstream": "http://h:1", "color": "red"}, "color"),
    ],
)
def test_invalid_entries_are_explained(entry: dict[str, str], says: str) -> None:
    message = _invalid([entry])
    assert says in message and "proxies.0.egress.0" in message, message


def test_names_are_unique_in_a_pool() -> None:
    message = _invalid([{"upstream": "http://a:1", "name": "x"},
                        {"upstream": "socks5://b:2", "name": "x"}])
    assert "two egress entries are named x" in message
    assert "two egress entries are named a:1" in _invalid(
        [{"upstream": "http://a:1"}, {"upstream": "https://a:1"}])
    # A repeated address only weighs it more, as before.
    load_settings(None, proxies=[{"name": "open", "egress": [{"address": "127.0.0.2"}] * 2}])


def test_geoips_counts_a_prefix_as_one_entry(store: Store) -> None:
    egress = [*MIXED, {"prefix": "2001:db8:6::/48", "country": "DE"}]
    settings = load_settings(None, proxies=[{"name": "open", "geo": True, "egress": egress}])
    parent = store.accounts.create("boss", billing_day=1, proxies=["open"])
    assert proxies.geoips(settings, store, parent, {"name": "open"}) == {
        "DE": 2, "FR": 1, "US": 2}


def test_a_sticky_session_keeps_one_address_of_a_prefix_on_every_node() -> None:
    def prefix_pool(seed: int) -> EgressPool:
        return EgressPool([Egress(None, "DE", prefix=PREFIX)], geo=True, rng=random.Random(seed))

    first, second = prefix_pool(1), prefix_pool(2)
    session = parse_options([("session", b"basket7")])
    session = dataclasses.replace(session, session_account=42)
    kept = {chosen(first, session, family=6).address for _ in range(20)}
    assert len(kept) == 1 and kept == {chosen(second, session, family=6).address}
    (address,) = kept
    assert address is not None and ipaddress.ip_address(address) in ipaddress.ip_network(PREFIX)
    other = dataclasses.replace(session, session="basket8")
    assert chosen(first, other, family=6).address != address
    without = {chosen(first, family=6).address for _ in range(20)}
    assert len(without) == 20  # no session: a new address per request


def test_only_connections_from_an_address_asked_for_again_are_kept_idle() -> None:
    """A prefix's address drawn for one request is never asked for again: its connection
    is closed when done, not pooled; a sticky session's or a pinned address, and every
    other kind of member, may be taken again and are pooled."""
    from meshproxy.proxy.server.upstream import UpstreamConnection, UpstreamPool

    pool = mixed_pool()
    drawn = [c for c in (chosen(pool, family=6) for _ in range(100)) if c.freebind]
    assert drawn and not any(c.poolable for c in drawn)
    session = dataclasses.replace(parse_options([("session", b"s1")]), session_account=1)
    prefix_only = EgressPool([Egress(None, None, prefix=PREFIX)], geo=False)
    assert chosen(prefix_only, session, family=6).poolable
    assert chosen(prefix_only, RequestOptions(ip="2001:db8:5::abcd"), family=6).poolable
    others = [c for c in (chosen(pool) for _ in range(100)) if not c.freebind]
    assert others and all(c.poolable for c in others)
    # The pool closes what cannot be taken again and keeps the rest.
    upstreams = UpstreamPool()
    for choice, kept in ((drawn[0], 0), (chosen(prefix_only, session, family=6), 1)):
        connection = UpstreamConnection(upstreams, (choice.key, "::1", 80),
                                        poolable=choice.poolable)
        upstreams.put(connection)
        assert connection.closed is not choice.poolable
        assert len(upstreams) == kept
