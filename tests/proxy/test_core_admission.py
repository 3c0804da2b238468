"""Admission as playbooks, without sockets: the directory's answer, the listener, the
addresses and the pool in, one decision out; and the SOCKS5 reply code each refusal
becomes (the HTTP proxy answers the refusal's status itself). Both front ends run these
same functions (server/connection.py, server/socks.py)."""

from __future__ import annotations

import random

import pytest

from meshproxy.domain.limits import Limits
from meshproxy.domain.units import GB
from meshproxy.proxy.core import socks5
from meshproxy.proxy.core.admission import (
    Connect,
    Refuse,
    Resolve,
    destination,
    standing,
    unresolved,
)
from meshproxy.proxy.core.directory import AccountDirectory, AccountState
from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool
from meshproxy.proxy.core.options import NO_OPTIONS, RequestOptions
from meshproxy.proxy.core.policy import DestinationPolicy

from .test_core_directory import T, authenticate, basic, directory, record, view

POLICY = DestinationPolicy(["127.0.0.0/8", "::1/128"])  # loopback is a permitted origin


def pool(*addresses: str) -> EgressPool:
    return EgressPool([Egress(a, None) for a in addresses], geo=False, rng=random.Random(3))


V4 = pool("127.0.0.2")
DUAL = pool("127.0.0.2", "::1")


def accounts() -> AccountDirectory:
    return directory(
        view(record(1, "alice")),
        view(record(2, "capped", limits=Limits(monthly_gb=1))),
        view(record(3, "off", active=False)),
    )


def refused(decision: object) -> tuple[int, str, int]:
    """A refusal's HTTP status, its RFC 9209 type and the SOCKS5 reply for it."""
    assert isinstance(decision, Refuse), decision
    error = decision.error
    return error.status, error.proxy_status, socks5.reply_code(error.status, error.proxy_status)


def test_an_account_in_good_standing_goes_on_and_is_counted_for_its_listener() -> None:
    d = accounts()
    alice = authenticate(d, basic("alice", "pw"))
    assert isinstance(alice, AccountState)
    assert standing(alice, d, "open") is alice  # no decision object for the usual case
    assert d.requests["open"] == 1


@pytest.mark.parametrize(
    ("who", "listener", "expected"),
    [
        ("wrong password", "open", (407, "http_request_denied", socks5.NOT_ALLOWED)),
        ("off", "open", (402, "http_request_denied", socks5.NOT_ALLOWED)),
        ("alice", "private", (402, "http_request_denied", socks5.NOT_ALLOWED)),
        ("capped", "open", (509, "http_request_denied", socks5.NOT_ALLOWED)),
    ],
)
def test_credentials_and_standing_refusals(
    who: str, listener: str, expected: tuple[int, str, int]
) -> None:
    d = accounts()
    d.by_username["capped"].add_usage(GB)
    if who == "wrong password":
        answer = authenticate(d, basic("alice", "nope"))  # the directory's refusal
    else:
        answer = authenticate(d, basic(who, "pw"))
        assert isinstance(answer, AccountState)
    assert refused(standing(answer, d, listener)) == expected


def test_a_banned_ip_is_refused_before_its_credentials() -> None:
    d = accounts()
    d.apply_bans({"10.0.0.9"}, {"10.0.0.9": T + 50})
    answer = authenticate(d, basic("alice", "pw"), ip="10.0.0.9")
    status, _, code = refused(standing(answer, d, "open"))
    assert status == 407 and code == socks5.NOT_ALLOWED


def test_unknown_addresses_are_resolved_first_then_routed() -> None:
    assert destination("example.test", None, POLICY, V4, NO_OPTIONS) == Resolve("example.test")
    decision = destination("example.test", ("127.0.0.1",), POLICY, V4, NO_OPTIONS)
    assert decision == Connect("127.0.0.1", EgressChoice("127.0.0.2"))


def test_a_name_that_does_not_resolve_is_a_502_and_host_unreachable() -> None:
    assert refused(unresolved("nowhere.test")) == (502, "dns_error", socks5.HOST_UNREACHABLE)
    assert refused(destination("x.test", (), POLICY, V4, NO_OPTIONS))[0] == 502


def test_the_policy_refuses_with_403_and_skips_to_a_permitted_address() -> None:
    only_private = destination("in.test", ("10.1.2.3",), POLICY, V4, NO_OPTIONS)
    assert refused(only_private) == (403, "destination_ip_prohibited", socks5.NOT_ALLOWED)
    mixed = destination("in.test", ("10.1.2.3", "127.0.0.5"), POLICY, V4, NO_OPTIONS)
    assert isinstance(mixed, Connect) and mixed.address == "127.0.0.5"


def test_an_ipv4_mapped_address_is_routed_as_ipv4() -> None:
    decision = destination("m.test", ("::ffff:127.0.0.1",), POLICY, V4, NO_OPTIONS)
    assert decision == Connect("127.0.0.1", EgressChoice("127.0.0.2"))


def test_the_first_address_of_a_family_the_pool_has_wins() -> None:
    # IPv6 first, but the pool has only IPv4 egress: the IPv4 address is taken.
    v4 = destination("d.test", ("::1", "127.0.0.1"), POLICY, V4, NO_OPTIONS)
    assert isinstance(v4, Connect) and v4.address == "127.0.0.1"
    v6 = destination("d.test", ("::1", "127.0.0.1"), POLICY, DUAL, NO_OPTIONS)
    assert v6 == Connect("::1", EgressChoice("::1"))
    none = destination("d.test", ("::1",), POLICY, V4, NO_OPTIONS)
    assert refused(none) == (502, "destination_ip_unroutable", socks5.NETWORK_UNREACHABLE)


def test_a_refusal_of_the_options_is_not_retried_on_another_address() -> None:
    everything = frozenset({"127.0.0.2"})
    decision = destination(
        "o.test", ("127.0.0.1", "127.0.0.3"), POLICY, V4, RequestOptions(not_ips=everything)
    )
    assert refused(decision)[0] == 400
