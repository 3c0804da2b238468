"""Selenium (WebDriver, Debian's chromium and chromedriver) through the proxy, with no
extension: Chrome's --proxy-server, the client's address authorized on the account (IP
authentication: no credentials for the browser to send), and the options as
X-ProxyMesh-* request headers set through the DevTools protocol (docs/clients.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .conftest import Env, country_of

CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def chrome(
    env: Env, chromium: str, missing_service: Callable[[str, Exception], None]
) -> Iterator[Any]:
    from web.live import CHROMIUM_ARGS

    # selenium is in the dev extra; a missing chromedriver fails in CI, as a service does.
    if shutil.which(CHROMEDRIVER) is None:
        missing_service(CHROMEDRIVER, FileNotFoundError("apt-get install chromium-driver"))
    bob = env.account("bob", password=None)
    env.store.access.add_ip(bob, "127.0.0.1")  # the browser's address: its account
    env.sync()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    host, port = env.address()
    # Chromium never sends loopback destinations through a proxy unless told: <-loopback>.
    for arg in (*CHROMIUM_ARGS, "--headless=new", f"--proxy-server=http://{host}:{port}",
                "--proxy-bypass-list=<-loopback>"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def peer(driver: Any, url: str, **headers: str) -> str:
    """The address the echo origin saw for one page load with these request headers."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})
    driver.get(url)
    found: str = json.loads(driver.find_element("tag name", "body").text)["peer"]
    return found


def test_selenium_steers_the_proxy_with_option_headers(env: Env, chrome: Any) -> None:
    url = env.origins.url("/echo")
    german = {country_of(peer(chrome, url, **{"X-ProxyMesh-Country": "DE"})) for _ in range(3)}
    assert german == {"DE"}
    session = {"X-ProxyMesh-Country": "FR", "X-ProxyMesh-Session": "selenium1"}
    kept = {peer(chrome, url, **session) for _ in range(5)}
    assert len(kept) == 1 and country_of(kept.pop()) == "FR"
    # The options headers are the proxy's: none reaches the origin.
    chrome.get(url)
    echoed = json.loads(chrome.find_element("tag name", "body").text)
    sent = {name.lower() for name, _ in echoed["headers"]}
    assert not any(name.startswith("x-proxymesh-") for name in sent)
