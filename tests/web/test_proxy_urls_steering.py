"""The dashboard's proxy URLs: SOCKS5 and HTTPS proxy URLs where a proxy has those
listeners, and the username-options builder (country, session) the URLs then carry."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest

from meshproxy.config import Settings
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.steering import username_with_options

from .helpers import PARENT_PASSWORD, Browser


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        plans=[{"name": "default", "max_proxies": 2, "default_proxies": ["open", "world"]}],
        proxies=[
            {"name": "open", "port": 31280, "geo": True, "socks_port": 31380, "tls_port": 31480,
             "egress": [{"address": "127.0.0.2", "country": "US"}]},
            {"name": "world", "port": 31281},
        ],
    )


@pytest.fixture
def logged_in(browser: Browser, parent: AccountRecord) -> Browser:
    browser.login("pm_parent", PARENT_PASSWORD)
    return browser


COPY_FIELD = re.compile(r'class="copy" type="text" readonly value="([^"]*)"')


def copy_fields(page: str) -> list[str]:
    return [html.unescape(value) for value in COPY_FIELD.findall(page)]


def test_socks5_and_https_urls_where_the_proxy_has_them(logged_in: Browser) -> None:
    fields = copy_fields(logged_in.get("/dashboard/proxies/").text)
    assert "socks5h://pm_parent:PASSWORD@open.localhost:31380" in fields
    assert "https://pm_parent:PASSWORD@open.localhost:31480" in fields
    assert not any(f.startswith(("socks5h://", "https://")) and "world" in f for f in fields)
    assert '<code class="steered-username">pm_parent</code>' in logged_in.get(
        "/dashboard/proxies/").text  # the builder's username, without options yet


def test_the_builder_puts_country_and_session_in_every_url(logged_in: Browser) -> None:
    page = logged_in.get("/dashboard/proxies/?country=de&session=abc.1&sesstime=30").text
    user = "pm_parent-country-de-session-abc.1-sesstime-30"
    fields = copy_fields(page)
    assert f'<code class="steered-username">{user}</code>' in page
    assert f"http://{user}:PASSWORD@open.localhost:31280" in fields
    assert f"socks5h://{user}:PASSWORD@open.localhost:31380" in fields
    assert f"https://{user}:PASSWORD@open.localhost:31480" in fields
    assert "http://open.localhost:31280" in fields  # IP authentication carries no username


def test_bad_builder_values_say_so_and_change_nothing(logged_in: Browser) -> None:
    page = logged_in.get("/dashboard/proxies/?country=usa&session=a%20b").text
    assert "Country: two letters; session: 1-64 of A-Z a-z 0-9 . _ ~" in html.unescape(page)
    assert "http://pm_parent:PASSWORD@open.localhost:31280" in copy_fields(page)


def test_the_username_rule_matches_the_proxys_parser() -> None:
    from meshproxy.proxy.core.username import split_login

    user = username_with_options("alice", country="FR", session="s~1", minutes="5")
    assert user == "alice-country-fr-session-s~1-sesstime-5"
    login = split_login(user, {"alice"})
    assert login is not None and login.error is None
    assert (login.options.country, login.options.session, login.options.session_minutes) == (
        "FR", "s~1", 5)
    assert username_with_options("alice", minutes="0") is None
