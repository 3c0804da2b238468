"""End to end in Debian's headless chromium (Playwright with executable_path), against a
real uvicorn server on 127.0.0.1 serving the API app with the dashboard mounted.

Without /usr/bin/chromium these tests skip on a developer machine and fail in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from meshproxy.api import create_app
from meshproxy.api.forwarding import Forwarding
from meshproxy.config import Settings, load_settings
from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.store import Store
from meshproxy.web import dashboard_routes

from .helpers import PARENT_PASSWORD, SUB_PASSWORD, Clock, make_parent, make_sub
from .live import CHROMIUM_ARGS, LiveServer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, Store]]:
    directory = tmp_path_factory.mktemp("dashboard-e2e")
    settings = load_settings(
        None,
        data_dir=str(directory / "data"),
        api={"tls": False, "require_https": False},
        plans=[{"name": "default", "max_sub_accounts": 50, "default_proxies": ["open"]}],
    )
    store = Store.open(f"sqlite:///{directory / 'store.sqlite3'}")
    clock = Clock()
    routes = dashboard_routes(
        settings, store, clock=clock, clients=Forwarding(settings.api.trusted_proxies)
    )
    app = create_app(settings, store, mounts=routes, clock=clock)
    with LiveServer(app) as server:
        yield server.url, settings, store
    store.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    # Script errors and CSP violations are console errors; a 4xx page is one too, on purpose.
    opened.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "the server responded with a status of 4" not in msg.text
            else None
        ),
    )
    # Every stylesheet, script and image loads.
    opened.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.request.resource_type != "document" and response.status >= 400
            else None
        ),
    )
    yield opened
    context.close()
    assert problems == []


def log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/dashboard/")  # redirected to the login form
    assert page.url.startswith(f"{base}/dashboard/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_url(f"{base}/dashboard/")


def text_of(page: Any) -> str:
    return str(page.locator("main").inner_text())


@pytest.fixture(scope="module")
def parent(site: tuple[str, Settings, Store]) -> AccountRecord:
    _, settings, store = site
    return make_parent(settings, store, "pm_boss")


def test_parent_manages_a_sub_account(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, store = site
    log_in(page, base, "pm_boss", PARENT_PASSWORD)
    page.get_by_role("link", name="Sub-accounts").click()
    page.get_by_role("link", name="New sub-account").click()

    # A bad form: the API's messages appear next to the fields, the values stay.
    page.get_by_label("Username").fill("bad name!")
    page.get_by_label("Monthly limit (GB)").fill("-1")
    page.get_by_role("button", name="Create sub-account").click()
    assert (
        "This value may contain only letters" in page.locator("#new-username-errors").inner_text()
    )
    assert "greater than or equal to 0" in page.locator("#new-monthly_limit-errors").inner_text()
    assert page.get_by_label("Username").input_value() == "bad name!"
    assert page.get_by_label("Username").get_attribute("aria-invalid") == "true"

    # A good one.
    page.get_by_label("Username").fill("pm_e2e")
    page.get_by_label("Password").fill("e2e-secret")
    page.get_by_label("Monthly limit (GB)").fill("5")
    page.get_by_role("button", name="Create sub-account").click()
    page.wait_for_url(f"{base}/dashboard/sub-accounts/pm_e2e/")
    assert "Sub-account pm_e2e created." in text_of(page)

    # Set limits.
    page.get_by_label("Monthly limit (GB)").fill("10")
    page.get_by_label("Total limit (GB)").fill("50")
    page.get_by_role("button", name="Save changes").click()
    assert "Changes saved." in text_of(page)
    created = store.get_account("pm_e2e")
    assert created is not None
    assert (created.limits.monthly_gb, created.limits.total_gb) == (10, 50)

    # Add an IP, typed and the browser's own.
    page.get_by_label("IP address", exact=True).fill("192.0.2.44")
    page.get_by_role("button", name="Add IP address").click()
    assert "The IP address 192.0.2.44 was added." in text_of(page)
    page.get_by_role("button", name="Add my current IP (127.0.0.1)").click()
    assert store.list_ips(created) == ["192.0.2.44", "127.0.0.1"]

    # Deactivate.
    page.get_by_role("button", name="Deactivate").click()
    assert "Sub-account pm_e2e deactivated." in text_of(page)
    deactivated = store.get_account("pm_e2e")
    assert deactivated is not None and not deactivated.active

    # Export the period's usage as CSV.
    store.record_usage([UsageDelta(created.id, parent.id, 123_456)], date(2026, 11, 15))
    page.get_by_role("link", name="Export").click()
    page.get_by_label("Current billing period").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert content.splitlines() == [
        "username,date,bytes,gigabytes",
        "pm_e2e,2026-11-15,123456,0.000123456",
    ]

    # Delete, after a confirmation page.
    page.goto(f"{base}/dashboard/sub-accounts/pm_e2e/")
    page.get_by_role("link", name="Delete…").click()
    assert "permanently deletes" in text_of(page)
    page.get_by_role("button", name="Delete pm_e2e permanently").click()
    page.wait_for_url(f"{base}/dashboard/sub-accounts/")
    assert "Sub-account pm_e2e deleted." in text_of(page)
    assert store.get_account("pm_e2e") is None


def test_sub_account_sees_only_its_own(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, store = site
    make_sub(store, parent, "pm_one")
    other = make_sub(store, parent, "pm_two")
    store.add_ip(other, "198.51.100.200")
    log_in(page, base, "pm_one", SUB_PASSWORD)
    overview = text_of(page)
    assert "Sub-account pm_one of pm_boss." in overview
    assert "pm_two" not in overview
    proxy_url = page.get_by_role(
        "textbox", name="Proxy URL of open.localhost:31280 with password", exact=True
    )
    assert proxy_url.input_value() == "http://pm_one:PASSWORD@open.localhost:31280"
    assert page.get_by_role("link", name="Sub-accounts").count() == 0  # not offered

    for path in (
        "/dashboard/sub-accounts/",
        "/dashboard/sub-accounts/pm_two/",
        "/dashboard/new-sub-account/",
        "/dashboard/export/usage.csv?period=current",
        "/dashboard/help/",
    ):
        response = page.goto(base + path)
        assert response.status == 403, path
        assert "This page is for parent accounts only." in text_of(page)
        assert "pm_two" not in text_of(page)

    page.goto(f"{base}/dashboard/access/")
    assert "198.51.100.200" not in text_of(page)  # another account's data
