"""End to end in Debian's headless chromium (Playwright with executable_path), against a
real uvicorn server on 127.0.0.1 serving the API app with the dashboard mounted.

Without /usr/bin/chromium these tests skip on a developer machine and fail in CI.
"""

from __future__ import annotations

import shlex
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
    created = store.accounts.get("pm_e2e")
    assert created is not None
    assert (created.limits.monthly_gb, created.limits.total_gb) == (10, 50)

    # Add an IP, typed and the browser's own.
    page.get_by_label("IP address", exact=True).fill("192.0.2.44")
    page.get_by_role("button", name="Add IP address").click()
    assert "The IP address 192.0.2.44 was added." in text_of(page)
    page.get_by_role("button", name="Add my current IP (127.0.0.1)").click()
    assert store.access.list_ips(created) == ["192.0.2.44", "127.0.0.1"]

    # Deactivate.
    page.get_by_role("button", name="Deactivate").click()
    assert "Sub-account pm_e2e deactivated." in text_of(page)
    deactivated = store.accounts.get("pm_e2e")
    assert deactivated is not None and not deactivated.active

    # Export the period's usage as CSV.
    store.usage.record([UsageDelta(created.id, parent.id, 123_456)], date(2026, 11, 15))
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
    assert store.accounts.get("pm_e2e") is None


def test_sub_account_sees_only_its_own(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, store = site
    make_sub(store, parent, "pm_one")
    other = make_sub(store, parent, "pm_two")
    store.access.add_ip(other, "198.51.100.200")
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


# ---- issue 12: Copy buttons, the help page's commands, the 509 badge, HTML 404s --------

WIDTHS = (1280, 1600)
LONG_SUB = "pm_a.rather+long-username_30c"  # 29 characters: the widest proxy URLs

_BUTTON_STATE = """button => {
  const input = button.parentElement.querySelector('input.copy');
  const wrap = button.closest('.table-wrap');
  const rect = button.getBoundingClientRect();
  const cell = button.closest('td').getBoundingClientRect();
  const x = rect.left + rect.width / 2, y = rect.top + rect.height / 2;
  const hit = document.elementFromPoint(x, y);
  return {
    on_top: hit === button || button.contains(hit),
    hit: hit ? hit.outerHTML.slice(0, 80) : null,
    in_cell: rect.left >= cell.left - 0.5 && rect.right <= cell.right + 0.5,
    input_in_cell: input.getBoundingClientRect().right <= rect.left + 0.5,
    wrap_overflows: wrap.scrollWidth > wrap.clientWidth,
    in_view: rect.left >= 0 && rect.right <= window.innerWidth,
  };
}"""


def _check_copy_buttons(page: Any, base: str, path: str, width: int) -> int:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(base + path)
    buttons = page.locator("button.copy-button")
    count = int(buttons.count())
    for index in range(count):
        button = buttons.nth(index)
        # Scroll the page (not the table) so the button's row is in view, then look at it.
        button.evaluate("b => window.scrollTo(0, b.getBoundingClientRect().top + scrollY - 300)")
        state = button.evaluate(_BUTTON_STATE)
        assert state == {**state, "on_top": True, "in_cell": True, "input_in_cell": True,
                         "wrap_overflows": False, "in_view": True}, (path, width, index, state)
        field = button.locator("xpath=..").locator("input.copy")
        expected = field.input_value()
        page.evaluate("navigator.clipboard.writeText('')")
        button.click()
        assert page.evaluate("navigator.clipboard.readText()") == expected, (path, width)
        selected = field.evaluate("i => i.value.slice(i.selectionStart, i.selectionEnd)")
        assert selected == expected  # what was copied is what is highlighted
        page.wait_for_function("b => b.textContent === 'Copied'", arg=button.element_handle())
    return count


def test_copy_buttons_copy_and_nothing_covers_them(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, store = site
    if store.accounts.get(LONG_SUB) is None:
        make_sub(store, parent, LONG_SUB)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    log_in(page, base, "pm_boss", PARENT_PASSWORD)
    for width in WIDTHS:
        assert _check_copy_buttons(page, base, "/dashboard/proxies/", width) == 2
    page.context.clear_cookies()
    log_in(page, base, LONG_SUB, SUB_PASSWORD)  # the sub-account's overview
    for width in WIDTHS:
        assert _check_copy_buttons(page, base, "/dashboard/", width) == 2
        assert _check_copy_buttons(page, base, "/dashboard/proxies/", width) == 2


def test_help_page_code_is_one_shell_command_a_line(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, _ = site
    log_in(page, base, "pm_boss", PARENT_PASSWORD)
    page.goto(f"{base}/dashboard/help/")
    blocks = page.locator("pre code").all_inner_texts()
    assert len(blocks) == 4
    commands = 0
    for block in blocks:
        for line in block.strip().splitlines():
            words = shlex.split(line, comments=True)
            assert words[0] == "curl", line
            assert not any("curl" in word for word in words[1:]), line  # two run together
            assert all(not word.endswith(("31280curl", "IPcurl")) for word in words), line
            commands += 1
    assert commands == 6 + 5 + 4 + 3  # every example, each on its own line


def test_an_over_limit_sub_account_is_not_shown_active(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, store = site
    full = make_sub(store, parent, "pm_full", monthly_limit_gb=1)
    store.usage.record([UsageDelta(full.id, parent.id, 10**9)], date(2026, 11, 15))
    make_sub(store, parent, "pm_fine", monthly_limit_gb=1)
    log_in(page, base, "pm_boss", PARENT_PASSWORD)
    page.goto(f"{base}/dashboard/sub-accounts/pm_full/")
    badge = page.locator(".heading-row .badge")
    assert badge.inner_text() == "Over limit, 509"
    assert "Monthly bandwidth limit of the account reached" in str(badge.get_attribute("title"))
    green = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--ok')")
    assert badge.evaluate("b => getComputedStyle(b).color") != _rgb(green.strip())
    assert "the proxies answer 509" in text_of(page)
    page.goto(f"{base}/dashboard/sub-accounts/pm_fine/")
    assert page.locator(".heading-row .badge").inner_text() == "Active"
    page.goto(f"{base}/dashboard/sub-accounts/?q=pm_f")
    rows = page.locator("table.accounts tbody tr").all_inner_texts()
    assert any(row.startswith("pm_full") and "over limit, 509" in row for row in rows), rows
    assert any(row.startswith("pm_fine") and "over limit" not in row for row in rows), rows


def _rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def test_an_unknown_dashboard_address_is_an_html_page(
    page: Any, site: tuple[str, Settings, Store], parent: AccountRecord
) -> None:
    base, _, _ = site
    for path in ("/dashboard/no-such-page/", "/dashboard/sub-accounts", "/dashboard/x/y/z"):
        response = page.goto(base + path)
        assert response.status == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert page.locator("h1").inner_text() == "Not found"
        assert "There is no page at this address." in text_of(page)
    log_in(page, base, "pm_boss", PARENT_PASSWORD)
    page.goto(f"{base}/dashboard/no-such-page/")
    assert page.get_by_role("link", name="Sub-accounts").count() == 1  # the logged-in menu
    api = page.goto(f"{base}/api/no-such-endpoint/")
    assert api.status == 404 and api.headers["content-type"] == "application/json"
