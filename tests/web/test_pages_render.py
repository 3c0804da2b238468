"""Every dashboard page renders for the account kind it is for."""

from __future__ import annotations

import pytest

from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store

from .helpers import PARENT_PASSWORD, SUB_PASSWORD, Browser, make_sub

PARENT_PAGES = [
    "/dashboard/",
    "/dashboard/sub-accounts/",
    "/dashboard/new-sub-account/",
    "/dashboard/sub-accounts/pm_a/",
    "/dashboard/sub-accounts/pm_a/delete/",
    "/dashboard/access/",
    "/dashboard/proxies/",
    "/dashboard/help/",
    "/dashboard/export/",
    "/dashboard/alerts/",
    "/dashboard/audit/",
    "/dashboard/password/",
]
SUB_PAGES = ["/dashboard/", "/dashboard/access/", "/dashboard/proxies/", "/dashboard/password/"]
CASES = [("pm_parent", PARENT_PASSWORD, path) for path in PARENT_PAGES] + [
    ("pm_a", SUB_PASSWORD, path) for path in SUB_PAGES
]


@pytest.mark.parametrize(("username", "password", "path"), CASES)
def test_page_renders(
    browser: Browser,
    parent: AccountRecord,
    store: Store,
    username: str,
    password: str,
    path: str,
) -> None:
    make_sub(store, parent, "pm_a")
    browser.login(username, password)
    response = browser.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<main id="main"' in response.text
    assert f'<span class="who">{username}' in response.text


def test_entry_points_redirect_to_the_dashboard(browser: Browser) -> None:
    for path in ("/", "/dashboard"):
        response = browser.get(path)
        assert response.status_code == 302 and response.headers["location"] == "/dashboard/"


def test_static_files_are_served(browser: Browser) -> None:
    css = browser.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert browser.get("/dashboard/static/dashboard.js").status_code == 200
