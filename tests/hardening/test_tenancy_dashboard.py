"""Cross-tenant attempts on the dashboard by URL manipulation: parent A on every page and
form of B's sub-accounts and of B itself, by plain, encoded and case-changed names; a
sub-account on every parent page with a sibling's or another tenant's name, and on its own
access forms with their values. Each refused; both tenants' data unchanged afterwards."""

from __future__ import annotations

import re
from typing import Any

import pytest

from web.helpers import Browser

from .dashboard import Dash

ROW = re.compile(r'<th scope="row"><a href="/dashboard/sub-accounts/[^"]+/">([^<]+)</a>')
# Every route of web/routes.py that names a sub-account, with a form that would change it.
SUB_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("get", "/", {}),
    ("post", "/edit/", {"first_name": "pwned", "password": "pwned", "monthly_limit": "1"}),
    ("post", "/activate/", {}),
    ("post", "/deactivate/", {}),
    ("get", "/delete/", {}),
    ("post", "/delete/", {}),
    ("post", "/ip/add/", {"ip": "203.0.113.77"}),
    ("post", "/ip/delete/", {"ip": "{ip}"}),
    ("post", "/hostname/add/", {"domain": "pwned.example.org"}),
    ("post", "/hostname/delete/", {"domain": "{host}"}),
]
# The parent-only pages that take no name, with forms that would change something.
PARENT_PAGES: list[tuple[str, str, dict[str, str]]] = [
    ("get", "/dashboard/sub-accounts/", {}),
    ("get", "/dashboard/new-sub-account/", {}),
    ("post", "/dashboard/new-sub-account/", {"username": "pm_dash_made"}),
    ("get", "/dashboard/export/", {}),
    ("get", "/dashboard/export/usage.csv", {}),
    ("get", "/dashboard/help/", {}),
    ("post", "/dashboard/proxies/add/", {"proxy": "fast"}),
    ("post", "/dashboard/proxies/delete/", {"proxy": "open"}),
    ("get", "/dashboard/alerts/", {}),
    ("post", "/dashboard/alerts/add/", {"url": "https://203.0.113.9/", "secret": "x" * 16}),
    ("post", "/dashboard/alerts/delete/", {"id": "1"}),
    ("get", "/dashboard/audit/", {}),
]


def _send(browser: Browser, method: str, path: str, data: dict[str, str]) -> Any:
    return browser.get(path) if method == "get" else browser.post(path, data)


@pytest.mark.parametrize(("method", "suffix", "form"), SUB_ROUTES,
                         ids=[f"{m} {s}" for m, s, _ in SUB_ROUTES])
def test_parent_a_cannot_reach_bs_accounts_by_url(
    dash: Dash, method: str, suffix: str, form: dict[str, str]
) -> None:
    t = dash.tenants
    a = dash.browser(t.a)
    before = dash.snapshot()
    for target, ip, host in ((t.b_sub, t.b_sub_ip, t.b_sub_host),
                             (t.b_off, t.b_off_ip, t.b_sub_host), (t.b, t.b_ip, t.b_host)):
        data = {k: v.format(ip=ip, host=host) for k, v in form.items()}
        for spelled in (target, target.replace("_", "%5F"), f"./{target}", target.upper()):
            response = _send(a, method, f"/dashboard/sub-accounts/{spelled}{suffix}", data)
            assert response.status_code in (403, 404), (spelled, suffix, response.status_code)
            assert "Bea" not in response.text and ip not in response.text
    assert dash.snapshot() == before


def test_parent_a_sees_nothing_of_b_in_its_own_pages(dash: Dash) -> None:
    t = dash.tenants
    a = dash.browser(t.a)
    for search in (t.b_sub, "pm_", "Bea", "example.com", "%", "_"):
        page = a.get("/dashboard/sub-accounts/", params={"q": search}).text
        assert ROW.findall(page) in ([], [t.a_sub]), search
    for path in ("/dashboard/", "/dashboard/sub-accounts/", "/dashboard/access/",
                 "/dashboard/proxies/", "/dashboard/export/usage.csv",
                 "/dashboard/export/usage.csv?period=custom&start=2026-01-01&end=2026-12-31"):
        response = a.get(path)
        assert response.status_code == 200, path
        for foreign in (t.b, t.b_sub, t.b_off, t.b_sub_ip, t.b_ip, t.b_sub_host, "Bea"):
            assert foreign not in response.text, (path, foreign)
    assert t.a_sub in a.get("/dashboard/export/usage.csv").text  # A's own rows are there


def test_parent_a_cannot_take_or_remove_bs_addresses_from_its_own_forms(dash: Dash) -> None:
    t = dash.tenants
    a = dash.browser(t.a)
    before = dash.snapshot()
    for kind, field, values in (("ip", "ip", (t.b_sub_ip, t.b_ip)),
                                ("hostname", "domain", (t.b_sub_host, t.b_host))):
        for action in ("add", "delete"):
            for value in values:
                own = a.post(f"/dashboard/access/{kind}/{action}/",
                             {field: value, "username": t.b_sub})
                assert own.status_code == 400, (kind, action, value)
                sub = a.post(f"/dashboard/sub-accounts/{t.a_sub}/{kind}/{action}/",
                             {field: value})
                assert sub.status_code == 400, (kind, action, value)
    assert dash.snapshot() == before


@pytest.mark.parametrize(("method", "suffix", "form"), SUB_ROUTES,
                         ids=[f"{m} {s}" for m, s, _ in SUB_ROUTES])
def test_a_sub_account_cannot_reach_any_account_by_url(
    dash: Dash, method: str, suffix: str, form: dict[str, str]
) -> None:
    t = dash.tenants
    me = dash.browser(t.b_sub)
    before = dash.snapshot()
    for target in (t.b_sub, t.b_off, t.b, t.a_sub, t.a):
        data = {k: v.format(ip=t.b_off_ip, host=t.b_host) for k, v in form.items()}
        response = _send(me, method, f"/dashboard/sub-accounts/{target}{suffix}", data)
        assert response.status_code == 403, (target, suffix)
        assert "This page is for parent accounts only." in response.text
    assert dash.snapshot() == before


@pytest.mark.parametrize(("method", "path", "form"), PARENT_PAGES,
                         ids=[f"{m} {p}" for m, p, _ in PARENT_PAGES])
def test_a_sub_account_gets_no_parent_page(
    dash: Dash, method: str, path: str, form: dict[str, str]
) -> None:
    me = dash.browser(dash.tenants.b_sub)
    before = dash.snapshot()
    response = _send(me, method, path, form)
    assert response.status_code == 403
    assert dash.tenants.b_off not in response.text
    assert dash.snapshot() == before
    assert dash.store.accounts.get("pm_dash_made") is None


def test_a_sub_account_cannot_touch_a_siblings_addresses(dash: Dash) -> None:
    t = dash.tenants
    me = dash.browser(t.b_sub)
    before = dash.snapshot()
    for kind, field, value in (("ip", "ip", t.b_off_ip), ("ip", "ip", t.b_ip),
                               ("hostname", "domain", t.b_host)):
        for extra in ({}, {"username": t.b_off}, {"username": t.b}):
            response = me.post(f"/dashboard/access/{kind}/delete/", {field: value, **extra})
            assert response.status_code == 400, (kind, value, extra)
    page = me.get("/dashboard/access/").text
    assert t.b_sub_ip in page and t.b_off_ip not in page and t.b_ip not in page
    assert dash.snapshot() == before
