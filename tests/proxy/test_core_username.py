"""Options in the proxy username (core/username.py), without sockets."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import NO_OPTIONS, RequestOptions, overlay, parse_options
from meshproxy.proxy.core.username import Login, split_login, steer

from .test_core_directory import NOW, authenticate, basic, directory, record, view

ACCOUNTS = {"alice", "bob-smith", "carol", "carol-country-us"}


def test_every_key_any_order_and_the_aliases() -> None:
    login = split_login("alice-country-us-session-abc.1_~-sesstime-30-ip-203.0.113.7", ACCOUNTS)
    assert login == Login(
        "alice-country-us-session-abc.1_~-sesstime-30-ip-203.0.113.7",
        "alice",
        RequestOptions(country="US", ip="203.0.113.7", session="abc.1_~", session_minutes=30),
    )
    swapped = split_login("alice-sessid-x-cc-de", ACCOUNTS)
    assert swapped is not None
    assert swapped.options == RequestOptions(country="DE", session="x")


def test_account_names_with_dashes_and_a_literal_account_wins() -> None:
    login = split_login("bob-smith-country-fr", ACCOUNTS)
    assert login is not None and login.account == "bob-smith"
    assert split_login("carol-country-us", ACCOUNTS) is None  # an account of its own
    assert split_login("carol", ACCOUNTS) is None
    assert split_login("nobody-country-us", ACCOUNTS) is None  # no account: the directory decides


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("alice-colour-red", "unknown username option 'colour'"),
        ("alice-country", "username option 'country' has no value"),
        ("alice-country-usa", "username option 'country' must be a two-letter country code"),
        ("alice-session-" + "x" * 65, "username option 'session' must be 1-64 of"),
        ("alice-sessid-a+b", "username option 'sessid' must be 1-64 of"),
        ("alice-sesstime-0", "'sesstime' must be whole minutes, 1-1440"),
        ("alice-sesstime-1441", "'sesstime' must be whole minutes, 1-1440"),
        ("alice-sesstime-ten", "'sesstime' must be whole minutes, 1-1440"),
        ("alice-ip-300.1.1.1", "username option 'ip' must be an IP address"),
        ("alice-cc-us-country-de", "username option 'country' given twice"),
    ],
)
def test_an_unknown_key_or_a_bad_value_is_a_407_naming_it(username: str, reason: str) -> None:
    login = split_login(username, ACCOUNTS)
    assert login is not None and login.account == "alice"
    assert login.error is not None and reason in login.error
    refused = steer(NO_OPTIONS, login)
    assert isinstance(refused, ProxyError) and refused.status == 407
    assert refused.reason == login.error


def test_headers_win_over_username_options() -> None:
    login = split_login("alice-country-us-session-s1-sesstime-5", ACCOUNTS)
    headers = parse_options([("country", b"de"), ("session-time", b"20")])
    assert steer(headers, login) == RequestOptions(
        country="DE", session="s1", session_minutes=20
    )
    assert steer(NO_OPTIONS, None) is NO_OPTIONS
    assert overlay(NO_OPTIONS, RequestOptions(session="a")) == RequestOptions(session="a")


def test_the_account_is_authenticated_and_the_options_are_remembered() -> None:
    d = directory(view(record(1, "alice")), view(record(2, "alice-country-us")))
    header = basic("alice-country-de-session-x", "pw")
    account = authenticate(d, header)
    assert isinstance(account, AccountState) and account.username == "alice"
    assert authenticate(d, header) is account  # the remembered credentials
    found = d.logins.found(header)
    assert found is not None
    assert found.options == RequestOptions(country="DE", session="x", session_account=1)
    assert d.logins.found(header) is found  # parsed once
    literal = authenticate(d, basic("alice-country-us", "pw"))
    assert isinstance(literal, AccountState) and literal.username == "alice-country-us"
    assert d.logins.found(basic("alice-country-us", "pw")) is None


def test_a_wrong_password_with_bad_options_says_nothing_about_the_options() -> None:
    d = directory(view(record(1, "alice")))
    refused = authenticate(d, basic("alice-colour-red", "wrong"))
    assert isinstance(refused, ProxyError) and refused.reason == "invalid proxy credentials"
    assert d.auth_failures == 1  # the ban counter of the client, as for the account's name


def test_an_account_created_later_wins_over_remembered_options() -> None:
    d = directory(view(record(1, "alice")))
    header = basic("alice-country-de", "pw")
    first = authenticate(d, header)
    assert isinstance(first, AccountState) and first.username == "alice"
    assert authenticate(d, header) is first  # remembered
    d.update(["alice-country-de"], [view(record(2, "alice-country-de"))], NOW, {})
    second = authenticate(d, header)
    assert isinstance(second, AccountState) and second.username == "alice-country-de"
    assert d.logins.found(header) is None
