"""Headless Chromium (Playwright, Debian's chromium) steering the proxy with username
options in its proxy credentials, over the HTTP and the HTTPS (TLS) proxy listeners."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Env, country_of
from .listeners import start_listeners, tls_env

__all__ = ["start_listeners", "tls_env"]  # fixtures

# Chromium never sends loopback destinations through a proxy unless told: <-loopback>.
BYPASS = "<-loopback>"


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from web.live import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        # The HTTPS listener's certificate is the generated self-signed one.
        launched = playwright.chromium.launch(
            executable_path=chromium, args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"]
        )
        yield launched
        launched.close()


def peer_through(browser: Any, server: str, username: str, url: str) -> str:
    """The address the echo origin saw for one page load in a fresh context (its own
    connections to the proxy)."""
    context = browser.new_context(
        proxy={"server": server, "username": username, "password": "pw", "bypass": BYPASS},
    )
    try:
        page = context.new_page()
        response = page.goto(url, timeout=15_000)
        assert response is not None and response.status == 200
        peer: str = json.loads(page.inner_text("body"))["peer"]
        return peer
    finally:
        context.close()


@pytest.mark.parametrize("listener", ["http", "https"])
def test_chromium_country_and_session_in_the_proxy_username(
    tls_env: Env, browser: Any, listener: str
) -> None:
    env = tls_env
    host, port = (env.address() if listener == "http" else env.node.tls_addresses["open"])
    server = f"{listener}://{host}:{port}"
    url = env.origins.url("/echo")
    countries = {country_of(peer_through(browser, server, "alice-country-de", url))
                 for _ in range(3)}
    assert countries == {"DE"}
    # A fresh browser context each time: new connections to the proxy, one egress.
    sessions = {peer_through(browser, server, "alice-country-fr-session-chrome1", url)
                for _ in range(20 if listener == "http" else 10)}
    assert len(sessions) == 1 and country_of(sessions.pop()) == "FR"
