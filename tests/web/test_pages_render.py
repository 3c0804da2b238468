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
    "/dashboard/password/",
]
SUB_PAGES = ["/dashboard/", "/dashboard/access/", "/dashboard/proxies/", "/dashboard/password/"]


@pytest.mark.parametrize("path", PARENT_PAGES)
def test_parent_pages_render(
    browser: Browser, parent: AccountRecord, store: Store, path: str
) -> None:
    make_sub(store, parent, "pm_a")
    browser.login("pm_parent", PARENT_PASSWORD)
    response = browser.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<main id="main"' in response.text and "pm_parent" in response.text


@pytest.mark.parametrize("path", SUB_PAGES)
def test_sub_account_pages_render(
    browser: Browser, parent: AccountRecord, store: Store, path: str
) -> None:
    make_sub(store, parent, "pm_a")
    browser.login("pm_a", SUB_PASSWORD)
    response = browser.get(path)
    assert response.status_code == 200
    assert "pm_a" in response.text and "(sub-account)" in response.text
