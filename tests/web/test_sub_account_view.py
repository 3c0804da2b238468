"""What a sub-account sees: its own usage, limits, IPs, hostnames and proxies, and nothing
of any other account (403 on the parent's pages)."""

from __future__ import annotations

from datetime import date

import pytest

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store

from .helpers import SUB_PASSWORD, Browser, make_sub

PARENT_ONLY = [
    ("get", "/dashboard/sub-accounts/"),
    ("get", "/dashboard/sub-accounts/pm_me/"),
    ("get", "/dashboard/sub-accounts/pm_sibling/"),
    ("get", "/dashboard/new-sub-account/"),
    ("post", "/dashboard/new-sub-account/"),
    ("post", "/dashboard/sub-accounts/pm_sibling/deactivate/"),
    ("post", "/dashboard/sub-accounts/pm_sibling/delete/"),
    ("post", "/dashboard/sub-accounts/pm_sibling/ip/add/"),
    ("get", "/dashboard/export/"),
    ("get", "/dashboard/export/usage.csv"),
    ("get", "/dashboard/help/"),
    ("post", "/dashboard/proxies/add/"),
    ("post", "/dashboard/proxies/delete/"),
]


@pytest.fixture
def me(browser: Browser, parent: AccountRecord, store: Store) -> Browser:
    mine = make_sub(store, parent, "pm_me", monthly_limit_gb=2)
    sibling = make_sub(store, parent, "pm_sibling")
    store.access.add_ip(sibling, "198.51.100.77")
    store.usage.record([UsageDelta(mine.id, parent.id, GB // 2)], date(2026, 11, 18))
    store.usage.record([UsageDelta(sibling.id, parent.id, 9 * GB)], date(2026, 11, 18))
    browser.login("pm_me", SUB_PASSWORD)
    return browser


@pytest.mark.parametrize(("method", "path"), PARENT_ONLY)
def test_parent_pages_are_forbidden(me: Browser, store: Store, method: str, path: str) -> None:
    response = getattr(me, method)(
        path, **({"data": {"username": "pm_x"}} if method == "post" else {})
    )
    assert response.status_code == 403
    assert "This page is for parent accounts only." in response.text
    sibling = store.accounts.get("pm_sibling")
    assert sibling is not None and sibling.active and store.accounts.get("pm_x") is None


def test_overview_shows_only_own_usage_and_proxies(me: Browser) -> None:
    page = me.get("/dashboard/").text
    assert "500 MB <span" in page and "of 2 GB" in page
    assert "9 GB" not in page and "pm_sibling" not in page  # no other account's data
    assert 'value="http://pm_me:PASSWORD@open.localhost:31280"' in page
    assert 'value="http://open.localhost:31280"' in page
    assert "Current billing period, 2026-11-10 to 2026-12-09" in page  # the parent's day


def test_own_ips_and_hostnames_only(me: Browser, store: Store) -> None:
    page = me.get("/dashboard/access/").text
    assert "198.51.100.77" not in page  # the sibling's
    assert me.post("/dashboard/access/ip/add/", {"ip": "203.0.113.9"}).status_code == 303
    mine = store.accounts.get("pm_me")
    assert mine is not None and store.access.list_ips(mine) == ["203.0.113.9"]
    taken = me.post("/dashboard/access/ip/add/", {"ip": "198.51.100.77"})
    assert "This IP address is already authenticated." in taken.text
    # Deleting someone else's address is refused: it is not one of pm_me's.
    gone = me.post("/dashboard/access/ip/delete/", {"ip": "198.51.100.77"})
    assert "This IP address is not authenticated." in gone.text
    sibling = store.accounts.get("pm_sibling")
    assert sibling is not None and store.access.list_ips(sibling) == ["198.51.100.77"]


def test_proxies_page_lists_usable_proxies_read_only(me: Browser) -> None:
    page = me.get("/dashboard/proxies/").text
    assert "http://pm_me:PASSWORD@open.localhost:31280" in page
    assert "Authorize proxy" not in page and "/dashboard/proxies/delete/" not in page


def test_sub_account_changes_its_own_password(me: Browser, store: Store) -> None:
    response = me.post(
        "/dashboard/password/",
        {"current_password": SUB_PASSWORD, "new_password": "n3w", "confirm_password": "n3w"},
    )
    assert response.status_code == 303
    me.post("/dashboard/logout/")
    assert me.login("pm_me", "n3w").status_code == 303
