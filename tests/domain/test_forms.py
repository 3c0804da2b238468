from __future__ import annotations

import pytest

from meshproxy.domain.forms import (
    REQUIRED,
    HostnameForm,
    IpForm,
    ProxyForm,
    SubAccountForm,
    UsernameForm,
)


def test_username_is_required() -> None:
    form = SubAccountForm({})
    assert not form.is_valid
    assert form.errors == {"username": [REQUIRED]}


@pytest.mark.parametrize("username", ["a", "pm_alice", "a" * 30, "x.y@z+w-v_u", "PM_Bob9"])
def test_valid_usernames(username: str) -> None:
    form = UsernameForm({"username": username})
    assert form.is_valid, form.errors
    assert form.cleaned["username"] == username


def test_31_character_username_is_too_long() -> None:
    form = SubAccountForm({"username": "a" * 31})
    assert form.errors == {"username": ["Ensure this value has at most 30 characters (it has 31)."]}


@pytest.mark.parametrize("username", ["pm alice", "pm/alice", "pm:alice", "émile", "a\tb", "a#b"])
def test_usernames_with_other_characters_are_refused(username: str) -> None:
    form = SubAccountForm({"username": username})
    assert "username" in form.errors
    assert form.errors["username"][0].startswith("Enter a valid username.")


@pytest.mark.parametrize("username", ["a" * 31, "pm alice", "émile"])
def test_a_name_no_account_can_have_is_left_to_the_lookup(username: str) -> None:
    # It names no account: the operation's lookup answers 404, not a form error.
    assert UsernameForm({"username": username}).cleaned == {"username": username}


def test_password_limit_is_128_characters() -> None:
    assert SubAccountForm({"username": "u", "password": "p" * 128}).is_valid
    form = SubAccountForm({"username": "u", "password": "p" * 129})
    assert form.errors == {
        "password": ["Ensure this value has at most 128 characters (it has 129)."]
    }


def test_names_and_email_limits() -> None:
    form = SubAccountForm(
        {
            "username": "u",
            "first_name": "f" * 21,
            "last_name": "l" * 20,
            "email": "e" * 251 + "@x.io",
        }
    )
    assert set(form.errors) == {"first_name", "email"}
    assert SubAccountForm({"username": "u", "first_name": "f" * 20}).is_valid


def test_invalid_email() -> None:
    assert SubAccountForm({"username": "u", "email": "not-an-email"}).errors == {
        "email": ["Enter a valid email address."]
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("1.5", "Enter a whole number."),
        ("ten", "Enter a whole number."),
        ("1e3", "Enter a whole number."),
        ("10000000000001", "Ensure this value is less than or equal to 1000000000000."),
    ],
)
def test_bad_limits(value: str, message: str) -> None:
    form = SubAccountForm({"username": "u", "monthly_limit": value, "total_limit": value})
    assert form.errors == {"monthly_limit": [message], "total_limit": [message]}


def test_limits_are_whole_gb_including_zero() -> None:
    form = SubAccountForm({"username": "u", "monthly_limit": "0", "total_limit": " 25 "})
    assert form.is_valid
    assert form.cleaned == {"username": "u", "monthly_limit": 0, "total_limit": 25}


def test_absent_fields_stay_absent_and_empty_names_clear() -> None:
    form = SubAccountForm({"username": "u", "first_name": "", "monthly_limit": "", "password": ""})
    assert form.cleaned == {"username": "u", "first_name": ""}


def test_null_characters_are_refused() -> None:
    assert "first_name" in SubAccountForm({"username": "u", "first_name": "a\x00b"}).errors


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("10.0.0.1", "10.0.0.1"),
        (" 192.0.2.7 ", "192.0.2.7"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_ips_are_normalised(raw: str, clean: str) -> None:
    form = IpForm({"ip": raw})
    assert form.is_valid
    assert form.cleaned["ip"] == clean


@pytest.mark.parametrize("raw", ["1.2.3", "256.1.1.1", "10.0.0.0/8", "example.com", "::g"])
def test_bad_ips(raw: str) -> None:
    assert IpForm({"ip": raw}).errors == {"ip": ["Enter a valid IPv4 or IPv6 address."]}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Example.COM.", "example.com"), ("a-b.c", "a-b.c"), ("localhost", "localhost")],
)
def test_hostnames(raw: str, clean: str) -> None:
    form = HostnameForm({"domain": raw})
    assert form.cleaned["domain"] == clean


@pytest.mark.parametrize("raw", ["-a.com", "a..b", "a_b.com", "1.2.3.4", "x" * 64 + ".com"])
def test_bad_hostnames(raw: str) -> None:
    assert HostnameForm({"domain": raw}).errors == {"domain": ["Enter a valid hostname."]}


def test_proxy_is_required() -> None:
    assert ProxyForm({"proxy": "  "}).errors == {"proxy": [REQUIRED]}


def test_email_of_255_characters_is_accepted() -> None:
    assert SubAccountForm({"username": "u", "email": "e" * 250 + "@x.io"}).is_valid
