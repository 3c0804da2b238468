"""CSV export of daily usage per sub-account for a chosen period, and the SVG charts."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from meshproxy.config import Settings
from meshproxy.control.errors import FormInvalid
from meshproxy.control.subaccounts import create_sub_account
from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store
from meshproxy.web.charts import Series, daily_chart
from meshproxy.web.spreadsheet import csv_text, safe_cell

from .helpers import NOW, PARENT_PASSWORD, Browser, make_sub


@pytest.fixture
def billed(browser: Browser, parent: AccountRecord, store: Store) -> Browser:
    """Usage of two sub-accounts (and the parent itself) in this and the previous period."""
    alpha = make_sub(store, parent, "pm_alpha")
    beta = make_sub(store, parent, "pm_beta")
    store.usage.record([UsageDelta(alpha.id, parent.id, 1_500_000_000)], date(2026, 11, 12))
    store.usage.record([UsageDelta(beta.id, parent.id, 250)], date(2026, 11, 12))
    store.usage.record([UsageDelta(alpha.id, parent.id, 7)], date(2026, 11, 9))
    store.usage.record([UsageDelta(parent.id, None, 999)], date(2026, 11, 12))
    browser.login("pm_parent", PARENT_PASSWORD)
    return browser


def rows(response: object) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))  # type: ignore[attr-defined]


def test_current_period_csv(billed: Browser) -> None:
    response = billed.get("/dashboard/export/usage.csv?period=current")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="usage-pm_parent-2026-11-10-to-2026-12-09.csv"'
    )
    assert rows(response) == [
        ["username", "date", "bytes", "gigabytes"],
        ["pm_alpha", "2026-11-12", "1500000000", "1.500000000"],
        ["pm_beta", "2026-11-12", "250", "0.000000250"],
    ]


def test_previous_and_custom_periods(billed: Browser) -> None:
    previous = rows(billed.get("/dashboard/export/usage.csv?period=previous"))
    assert previous[1:] == [["pm_alpha", "2026-11-09", "7", "0.000000007"]]
    custom = billed.get("/dashboard/export/usage.csv?period=custom&start=2026-11-09&end=2026-11-12")
    assert [r[:2] for r in rows(custom)[1:]] == [
        ["pm_alpha", "2026-11-09"],
        ["pm_alpha", "2026-11-12"],
        ["pm_beta", "2026-11-12"],
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=custom&start=&end=2026-11-01", "This field is required."),
        ("period=custom&start=2026-13-01&end=2026-11-01", "Enter a valid date (YYYY-MM-DD)."),
        ("period=custom&start=2026-11-05&end=2026-11-01", "The last day must not be before"),
        ("period=custom&start=2020-01-01&end=2026-11-01", "Choose at most 366 days."),
        ("period=someday", "Select a valid choice."),
    ],
)
def test_bad_choices_show_the_form_again(billed: Browser, query: str, message: str) -> None:
    response = billed.get(f"/dashboard/export/usage.csv?{query}")
    assert response.status_code == 400
    assert message in response.text and "Download CSV" in response.text


def test_charts_of_current_and_previous_periods(billed: Browser) -> None:
    page = billed.get("/dashboard/").text
    assert "Current billing period, 2026-11-10 to 2026-12-09" in page
    assert "Previous billing period, 2026-10-10 to 2026-11-09" in page
    assert "2026-11-12 usage: 1.5 GB" in page  # the parent's rows hold its whole tree
    # The stacked chart: each top sub-account, then everything else (the parent's own use).
    assert "2026-11-12 pm_alpha: 1.5 GB" in page
    assert "2026-11-12 pm_beta: 250 B" in page
    assert "2026-11-12 everything else: 999 B" in page


def test_sub_account_page_has_its_own_charts(billed: Browser) -> None:
    page = billed.get("/dashboard/sub-accounts/pm_beta/").text
    assert "2026-11-12 usage: 250 B" in page and "1.5 GB" not in page


def test_chart_svg_is_escaped_and_scaled() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(3)]
    series = [
        Series("<script>", [GB, 0, 3 * GB]),
        Series("b&b", [GB, 2 * GB, 0], "#000000"),
    ]
    svg = str(daily_chart("c1", 'Title "x" <y>', days, series))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "b&amp;b" in svg
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert svg.count("<rect") == 4  # zero values draw nothing
    assert ">3 GB</text>" in svg  # the axis reaches the tallest stack (2 GB + 1 GB)
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"', svg)]
    assert max(heights) == pytest.approx(3 * min(heights), abs=0.3)  # 3 GB bar, three 1 GB ones


def test_empty_chart_still_draws_an_axis() -> None:
    svg = str(daily_chart("c2", "Nothing", [date(2026, 1, 1)], [Series("usage", [0])]))
    assert "<rect" not in svg and ">0 B</text>" in svg


# Sub-account usernames may start with + - or @ (letters, digits and . @ + - _); a
# spreadsheet would run such a cell as a formula, so the CSV quotes it.
FORMULA_USERNAMES = ("+pm_plus", "-pm_minus", "@pm_at")


def test_formula_usernames_are_quoted_in_the_csv(
    browser: Browser, settings: Settings, parent: AccountRecord, store: Store
) -> None:
    for username in FORMULA_USERNAMES:
        create_sub_account(settings, store, parent, {"username": username}, now=NOW)
        sub = store.accounts.get(username)
        assert sub is not None
        store.usage.record([UsageDelta(sub.id, parent.id, 42)], date(2026, 11, 12))
    browser.login("pm_parent", PARENT_PASSWORD)
    response = browser.get("/dashboard/export/usage.csv?period=current")
    assert sorted(rows(response)[1:]) == [
        ["'+pm_plus", "2026-11-12", "42", "0.000000042"],
        ["'-pm_minus", "2026-11-12", "42", "0.000000042"],
        ["'@pm_at", "2026-11-12", "42", "0.000000042"],
    ]


@pytest.mark.parametrize("username", ["=pm_eq", "\tpm_tab", "\rpm_cr"])
def test_other_formula_starts_are_not_usernames(
    settings: Settings, parent: AccountRecord, store: Store, username: str
) -> None:
    with pytest.raises(FormInvalid):
        create_sub_account(settings, store, parent, {"username": username}, now=NOW)
    assert store.accounts.get(username) is None


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_quoted(start: str) -> None:
    cell = f"{start}SUM(A1:A9)"
    assert safe_cell(cell) == f"'{cell}"
    assert list(csv.reader(io.StringIO(csv_text(["h"], [[cell]]), newline=""))) == [
        ["h"],
        [f"'{cell}"],
    ]


def test_plain_text_and_numbers_are_left_alone() -> None:
    assert safe_cell("pm_alpha") == "pm_alpha"
    assert safe_cell("a=b") == "a=b"  # only the first character matters
    assert safe_cell(-5) == -5 and safe_cell(0) == 0
    assert csv_text(["n", "s"], [[-5, "x-1"]]) == "n,s\r\n-5,x-1\r\n"
