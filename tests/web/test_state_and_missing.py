"""The badge says what the proxies do with an account (402, 509 or serve it), and an address
under /dashboard/ that is no page is an HTML 404 (the API keeps its JSON)."""

from __future__ import annotations

from datetime import date

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.limits import Usage
from meshproxy.domain.units import GB
from meshproxy.store import Store
from meshproxy.web.state import ACTIVE, DEACTIVATED, account_state

from .helpers import PARENT_PASSWORD, SUB_PASSWORD, Browser, make_sub

IN_PERIOD = date(2026, 11, 15)  # the parent's billing day is 10; "now" is 2026-11-20


def test_state_of_an_account(store: Store, parent: AccountRecord) -> None:
    sub = make_sub(store, parent, "pm_s", monthly_limit_gb=2, total_limit_gb=5)
    assert account_state(sub, Usage(GB, GB)) is ACTIVE
    over = account_state(sub, Usage(2 * GB, 2 * GB))
    assert (over.label, over.css) == ("Over limit, 509", "over")
    assert over.why == "Monthly bandwidth limit of the account reached: the proxies answer 509."
    assert "Total" in account_state(sub, Usage(0, 5 * GB)).why
    capped = store.accounts.update(parent.username, total_limit_gb=1)
    assert capped is not None
    by_parent = account_state(sub, Usage(0, 0), capped, Usage(0, GB))
    assert by_parent.why.startswith("Total bandwidth limit of the parent account reached")
    off = store.accounts.update("pm_s", active=False)
    assert off is not None and account_state(off, Usage(9 * GB, 9 * GB)) is DEACTIVATED


def test_pages_show_a_limit_reached_by_the_parent(
    browser: Browser, store: Store, parent: AccountRecord
) -> None:
    sub = make_sub(store, parent, "pm_child")
    store.accounts.update(parent.username, monthly_limit_gb=1)
    store.usage.record([UsageDelta(sub.id, parent.id, GB)], IN_PERIOD)
    browser.login("pm_parent", PARENT_PASSWORD)
    page = browser.get("/dashboard/sub-accounts/pm_child/").text
    assert '<span class="badge over"' in page and ">Over limit, 509</span>" in page
    assert "Monthly bandwidth limit of the parent account reached" in page
    assert "over limit, 509" in browser.get("/dashboard/sub-accounts/").text
    assert "the proxies answer 509" in browser.get("/dashboard/").text  # the parent's own
    browser.client.cookies.clear()
    browser.login("pm_child", SUB_PASSWORD)
    assert "Monthly bandwidth limit of the parent account reached" in browser.get(
        "/dashboard/"
    ).text


def test_an_active_account_under_its_limits_is_green(
    browser: Browser, store: Store, parent: AccountRecord
) -> None:
    make_sub(store, parent, "pm_ok", monthly_limit_gb=1)
    browser.login("pm_parent", PARENT_PASSWORD)
    page = browser.get("/dashboard/sub-accounts/pm_ok/").text
    assert '<span class="badge" title="The proxies serve it.">Active</span>' in page
    assert "509" not in page


def test_unknown_dashboard_addresses_are_html_404s(
    browser: Browser, parent: AccountRecord
) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        for path in ("/dashboard/nope/", "/dashboard/sub-accounts", "/dashboard/a/b/c.html"):
            response = browser.client.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.headers["content-type"].startswith("text/html"), (method, path)
            assert "There is no page at this address." in response.text
            assert response.headers["content-security-policy"].startswith("default-src 'self'")
    browser.login("pm_parent", PARENT_PASSWORD)
    page = browser.get("/dashboard/nope/")
    assert page.status_code == 404 and "Log out" in page.text  # with the session's menu
