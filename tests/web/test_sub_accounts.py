"""A parent's sub-accounts in the dashboard: the table (search, sort, pages), and create,
edit, deactivate, activate and delete with the API's rules and messages."""

from __future__ import annotations

import re
from datetime import date

import pytest

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store
from meshproxy.web.pages.subaccounts import PAGE_SIZE

from .helpers import PARENT_PASSWORD, Browser, make_sub

ROW = re.compile(r'<th scope="row"><a href="/dashboard/sub-accounts/[^"]+/">([^<]+)</a>')


@pytest.fixture
def logged_in(browser: Browser, parent: AccountRecord) -> Browser:
    browser.login("pm_parent", PARENT_PASSWORD)
    return browser


def listed(browser: Browser, query: str = "") -> list[str]:
    response = browser.get(f"/dashboard/sub-accounts/{query}")
    assert response.status_code == 200
    return ROW.findall(response.text)


def test_table_shows_usage_against_limits(
    logged_in: Browser, parent: AccountRecord, store: Store
) -> None:
    sub = make_sub(store, parent, "pm_heavy", monthly_limit_gb=10)
    store.usage.record([UsageDelta(sub.id, parent.id, 4 * GB)], date(2026, 11, 15))
    store.usage.record([UsageDelta(sub.id, parent.id, 3 * GB)], date(2026, 11, 1))
    page = logged_in.get("/dashboard/sub-accounts/").text
    assert "4 GB</span>" not in page  # numbers read as "4 GB", not raw
    assert "4 GB <span" in page and "of 10 GB" in page  # this period, before 11-10 excluded
    assert "7 GB <span" in page and "· no limit" in page  # all time
    assert 'value="40.0"' in page  # the bar: 40 % of the monthly limit
    assert "2026-11-20" in page  # created


def test_search_sort_and_pages(logged_in: Browser, parent: AccountRecord, store: Store) -> None:
    for index in range(PAGE_SIZE + 5):
        make_sub(store, parent, f"pm_{index:03d}")
    make_sub(store, parent, "zz_special", email="Boss@Example.com")
    first = listed(logged_in)
    assert len(first) == PAGE_SIZE and first[0] == "pm_000"
    second = listed(logged_in, "?page=2")
    assert second == [f"pm_{i:03d}" for i in range(PAGE_SIZE, PAGE_SIZE + 5)] + ["zz_special"]
    page = logged_in.get("/dashboard/sub-accounts/").text
    assert "Page 1 of 2" in page and 'rel="next"' in page
    assert listed(logged_in, "?sort=username&dir=desc")[0] == "zz_special"
    assert listed(logged_in, "?q=boss@example") == ["zz_special"]
    searched = logged_in.get("/dashboard/sub-accounts/?q=pm_00").text
    assert "10 of 56 sub-accounts match" in searched
    assert listed(logged_in, "?q=nothing-like-this") == []
    # Nonsense parameters fall back to the defaults instead of failing.
    assert listed(logged_in, "?sort=password_hash&page=-3&dir=sideways")[0] == "pm_000"


def test_create_shows_the_apis_errors_next_to_the_fields(
    logged_in: Browser, parent: AccountRecord, store: Store
) -> None:
    make_sub(store, parent, "pm_taken")
    response = logged_in.post(
        "/dashboard/new-sub-account/",
        {"username": "", "email": "not-an-email", "monthly_limit": "-1", "first_name": "x" * 21},
    )
    assert response.status_code == 400
    text = response.text
    assert re.search(r'id="new-username-errors"><li>This field is required.', text)
    assert re.search(r'id="new-email-errors"><li>Enter a valid email address.', text)
    assert "Ensure this value is greater than or equal to 0." in text
    assert "Ensure this value has at most 20 characters (it has 21)." in text
    assert 'aria-invalid="true"' in text and 'value="not-an-email"' in text
    taken = logged_in.post("/dashboard/new-sub-account/", {"username": "pm_taken"})
    assert "A user with that username already exists." in taken.text


def test_create_then_edit_limits(logged_in: Browser, store: Store) -> None:
    response = logged_in.post(
        "/dashboard/new-sub-account/",
        {"username": "pm+new@x", "password": "pw", "monthly_limit": "5", "email": "a@b.co"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sub-accounts/pm%2Bnew%40x/"
    page = logged_in.get(response.headers["location"]).text
    assert "Sub-account pm+new@x created." in page
    created = store.accounts.get("pm+new@x")
    assert created is not None and created.limits.monthly_gb == 5 and created.password_hash
    edited = logged_in.post(
        "/dashboard/sub-accounts/pm%2Bnew%40x/edit/",
        {"first_name": "Ann", "last_name": "", "email": "", "monthly_limit": "7",
         "total_limit": "100", "password": ""},
    )  # fmt: skip
    assert edited.status_code == 303
    after = store.accounts.get("pm+new@x")
    assert after is not None
    assert (after.first_name, after.email, after.limits.monthly_gb, after.limits.total_gb) == (
        "Ann", None, 7, 100)  # fmt: skip
    assert after.password_hash == created.password_hash  # empty: unchanged
    bad = logged_in.post(
        "/dashboard/sub-accounts/pm%2Bnew%40x/edit/", {"total_limit": "lots", "first_name": "Bo"}
    )
    assert bad.status_code == 400 and "Enter a whole number." in bad.text
    assert 'value="lots"' in bad.text and 'value="Bo"' in bad.text


def test_plan_limit_is_shown_above_the_form(
    logged_in: Browser, parent: AccountRecord, store: Store
) -> None:
    for name in ("pm_1", "pm_2", "pm_3"):  # the test plan allows 3
        make_sub(store, parent, name)
    response = logged_in.post("/dashboard/new-sub-account/", {"username": "pm_4"})
    assert response.status_code == 402
    assert "Your plan allows 3 sub-accounts." in response.text


def test_deactivate_activate_and_delete_with_confirmation(
    logged_in: Browser, parent: AccountRecord, store: Store
) -> None:
    make_sub(store, parent, "pm_x")
    assert logged_in.post("/dashboard/sub-accounts/pm_x/deactivate/").status_code == 303
    account = store.accounts.get("pm_x")
    assert account is not None and not account.active
    page = logged_in.get("/dashboard/sub-accounts/pm_x/").text
    assert "Sub-account pm_x deactivated." in page and "Deactivated" in page
    logged_in.post("/dashboard/sub-accounts/pm_x/activate/")
    account = store.accounts.get("pm_x")
    assert account is not None and account.active
    confirm = logged_in.get("/dashboard/sub-accounts/pm_x/delete/")
    assert "Delete pm_x permanently" in confirm.text
    assert store.accounts.get("pm_x") is not None  # asking is not deleting
    done = logged_in.post("/dashboard/sub-accounts/pm_x/delete/")
    assert done.headers["location"] == "/dashboard/sub-accounts/"
    assert store.accounts.get("pm_x") is None
    assert "Sub-account pm_x deleted." in logged_in.get("/dashboard/sub-accounts/").text
    assert logged_in.get("/dashboard/sub-accounts/pm_x/").status_code == 404


def test_another_parents_sub_account_is_forbidden(
    logged_in: Browser, settings: object, store: Store
) -> None:
    other = store.accounts.create("other_parent", plan="default", billing_day=1)
    make_sub(store, other, "pm_theirs")
    for method, path in [
        ("get", "/dashboard/sub-accounts/pm_theirs/"),
        ("post", "/dashboard/sub-accounts/pm_theirs/edit/"),
        ("post", "/dashboard/sub-accounts/pm_theirs/deactivate/"),
        ("post", "/dashboard/sub-accounts/pm_theirs/delete/"),
        ("post", "/dashboard/sub-accounts/pm_theirs/ip/add/"),
        ("get", "/dashboard/sub-accounts/other_parent/"),
    ]:
        response = getattr(logged_in, method)(path)
        assert response.status_code == 403, path
        assert "This username is not one of your sub-accounts." in response.text
    theirs = store.accounts.get("pm_theirs")
    assert theirs is not None and theirs.active
