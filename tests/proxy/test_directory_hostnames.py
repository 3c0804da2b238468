"""Hostname authentication: only public addresses, each meaning one account (issue 12)."""

from __future__ import annotations

from meshproxy.domain.addresses import hostname_address_refused, networks
from meshproxy.proxy.core.errors import ProxyError

from .test_core_directory import authenticate, directory, record, view

PUBLIC = "93.184.216.34"


def test_non_public_addresses_are_refused_unless_allowed() -> None:
    assert hostname_address_refused(PUBLIC) is None
    assert hostname_address_refused("2606:4700::1111") is None
    for address, why in [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-public"),
    ]:
        assert hostname_address_refused(address) == why, address
    allowed = networks(["127.0.0.0/8", "::1/128"])
    assert hostname_address_refused("127.0.0.1", allowed) is None
    assert hostname_address_refused("::1", allowed) is None
    assert hostname_address_refused("10.1.2.3", allowed) == "private"


def test_a_hostname_resolving_to_loopback_authenticates_nobody() -> None:
    d = directory(view(record(1, "carol"), hostnames=("localhost",)))
    d.set_hostname_addresses({"localhost": ("127.0.0.1", "::1", PUBLIC)})
    assert isinstance(authenticate(d, None, ip="127.0.0.1"), ProxyError)
    assert isinstance(authenticate(d, None, ip="::1"), ProxyError)
    assert authenticate(d, None, ip=PUBLIC) is d.by_username["carol"]  # the public one stays


def test_loopback_authenticates_where_the_operator_allows_it() -> None:
    d = directory(
        view(record(1, "carol"), hostnames=("localhost",)), hostname_networks=["127.0.0.0/8"]
    )
    d.set_hostname_addresses({"localhost": ("127.0.0.1", "::1")})
    assert authenticate(d, None, ip="127.0.0.1") is d.by_username["carol"]
    assert isinstance(authenticate(d, None, ip="::1"), ProxyError)


def test_an_address_held_by_another_account_authenticates_only_as_that_account() -> None:
    d = directory(
        view(record(1, "alice"), ips=(PUBLIC,)),
        view(record(2, "bob"), hostnames=("bob.example",)),
        view(record(3, "carol"), hostnames=("carol.example",)),
        view(record(4, "dave"), hostnames=("dave.example",)),
    )
    d.set_hostname_addresses(
        {
            "bob.example": (PUBLIC,),  # alice's IP: stays alice's
            "carol.example": ("198.51.99.1",),  # shared by carol and dave, order unknown
            "dave.example": ("198.51.99.1", "198.51.99.2"),
        }
    )
    assert authenticate(d, None, ip=PUBLIC) is d.by_username["alice"]
    assert isinstance(authenticate(d, None, ip="198.51.99.1"), ProxyError)
    assert authenticate(d, None, ip="198.51.99.2") is d.by_username["dave"]


def test_an_address_two_accounts_hostnames_share_is_the_earlier_hostnames() -> None:
    """A tenant cannot take (or deny) another's hostname authentication by adding a name
    that resolves to the same address: the hostname added first keeps it."""
    d = directory(
        view(record(1, "first"), hostnames=("office.example",), hostname_ids=(7,)),
        view(record(2, "later"), hostnames=("spoof.example", "own.example"),
             hostname_ids=(9, 12)),
    )
    d.set_hostname_addresses(
        {
            "office.example": ("198.51.99.1",),
            "spoof.example": ("198.51.99.1",),
            "own.example": ("198.51.99.2",),
        }
    )
    assert authenticate(d, None, ip="198.51.99.1") is d.by_username["first"]
    assert authenticate(d, None, ip="198.51.99.2") is d.by_username["later"]
