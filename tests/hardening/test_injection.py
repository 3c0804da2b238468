"""SQL, HTML/script, template, unicode (RTL, emoji) and NUL injection strings in every free-text
field: first_name, last_name and email are stored and read back byte-exact through the
API's JSON and shown escaped in the dashboard (raw HTML has no live tag; in headless
chromium, with the page's CSP switched off so a live tag *would* run, no dialog fires and
no injected element exists). Fields with a grammar (username, IP, hostname, proxy, page
numbers) refuse them with 400; searches treat them as literal text."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest
from markupsafe import escape

from api.harness import Parent, Running, StartServer, fresh_source, unique
from meshproxy.config import Settings
from meshproxy.store import Store
from web.helpers import PARENT_PASSWORD, Clock, make_app
from web.live import CHROMIUM_ARGS, LiveServer

from .dashboard import Dash, dashboard_settings, seed_tenants

# Names hold at most 20 characters (and are stripped of surrounding blanks).
NAMES = [
    "' OR 1=1 --",
    "x');DROP TABLE a;--",
    '"><script>alert(1)',
    "<svg onload=alert()>",
    "<b onclick=alert(1)>",
    "{{7*7}}${7*7}#{7*7}",
    "&lt;b&gt;&amp;&#39;",
    "\\'\\\"%00%s%n`",
    "\u202eexe.txt\u202c",
    "Zoë 日本語 🙂 \u200f!",
]
EMAILS = [
    '"><script>alert(1)</script>@x.y',
    "'OR'1'='1'--@x.y",
    "<svg/onload=alert(1)>@x.y",
    "{{7*7}}@${7*7}.x",
    "\u202egro.live@x.y",
]
ROW = re.compile(r'<th scope="row"><a href="/dashboard/sub-accounts/[^"]+/">([^<]+)</a>')
LIVE_TAGS = ("<script>alert", "<svg onload", "<svg/onload", "<b onclick")


@pytest.fixture(scope="module")
def owner(api: Running) -> tuple[Parent, httpx.Client]:
    parent = api.parent(prefix="inject")
    return parent, parent.client(source=fresh_source())


@pytest.mark.parametrize("text", NAMES)
def test_names_round_trip_byte_exact_through_the_api(
    api: Running, owner: tuple[Parent, httpx.Client], text: str
) -> None:
    _, client = owner
    username = unique("pm_inj")
    created = client.post("/api/sub/create/", data={"username": username, "first_name": text,
                                                   "last_name": text[::-1]})
    assert created.status_code == 200, created.text
    got = client.get("/api/sub/get/", params={"username": username}).json()
    assert (got["first_name"], got["last_name"]) == (text, text[::-1])
    edited = client.post("/api/sub/edit/", data={"username": username, "last_name": text})
    assert edited.status_code == 200 and edited.json()["last_name"] == text
    stored = api.store.accounts.get(username)
    assert stored is not None and (stored.first_name, stored.last_name) == (text, text)


@pytest.mark.parametrize("email", EMAILS)
def test_emails_round_trip_byte_exact_through_the_api(
    owner: tuple[Parent, httpx.Client], email: str
) -> None:
    _, client = owner
    username = unique("pm_injm")
    created = client.post("/api/sub/create/", data={"username": username, "email": email})
    assert created.status_code == 200, created.text
    assert client.get("/api/sub/get/", params={"username": username}).json()["email"] == email


@pytest.mark.parametrize(("field", "value"), [
    ("first_name", "a\x00b"),
    ("last_name", "\x00"),
    ("email", "a\x00@x.y"),
    ("email", "' OR 1=1 --"),  # not an address
    ("email", "a@b <script>"),
    ("username", "' OR 1=1 --"),
    ("username", "admin'--"),
    ("username", "<script>"),
    ("username", "{{7*7}}"),
    ("username", "pm_\u202eevil"),
    ("username", "pm_é"),
    ("username", "pm\x00x"),
])
def test_injection_in_a_field_with_a_grammar_is_400(
    owner: tuple[Parent, httpx.Client], field: str, value: str
) -> None:
    _, client = owner
    data = {"username": unique("pm_injbad"), field: value}
    response = client.post("/api/sub/create/", data=data)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("path", "field", "value"), [
    ("/api/ip/add/", "ip", "127.0.0.1' OR 1=1 --"),
    ("/api/ip/add/", "ip", "<script>"),
    ("/api/ip/delete/", "ip", "1.2.3.4' --"),
    ("/api/hostname/add/", "domain", "evil.com' OR '1'='1"),
    ("/api/hostname/add/", "domain", "x.com<script>"),
    ("/api/hostname/add/", "domain", "{{7*7}}.com"),
    ("/api/hostname/add/", "domain", "xn--\u202e.com"),
    ("/api/hostname/delete/", "domain", "a.com;--"),
    ("/api/proxy/add/", "proxy", "open' OR 1=1 --"),
    ("/api/proxy/add/", "proxy", "<script>"),
])
def test_injection_in_addresses_and_names_is_400(
    owner: tuple[Parent, httpx.Client], path: str, field: str, value: str
) -> None:
    _, client = owner
    response = client.post(path, data={field: value})
    assert response.status_code == 400, response.text
    assert list(response.json()) == [field]
    for query in ({"offset": "0; DROP TABLE accounts"}, {"limit": "1 OR 1=1"}):
        assert client.get("/api/sub/list/", params=query).status_code == 400


# ---- the dashboard ------------------------------------------------------------------------


def test_stored_strings_are_shown_escaped(dash: Dash) -> None:
    b = dash.browser(dash.tenants.b)
    target = f"/dashboard/sub-accounts/{dash.tenants.b_sub}/"
    for index, text in enumerate(NAMES):
        email = EMAILS[index % len(EMAILS)]
        saved = b.post(f"{target}edit/", {"first_name": text, "last_name": text,
                                          "email": email, "monthly_limit": "5",
                                          "total_limit": "0"})
        assert saved.status_code == 303, saved.text
        stored = dash.store.accounts.get(dash.tenants.b_sub)
        assert stored is not None and (stored.first_name, stored.email) == (text, email)
        html = b.get(target).text
        for shown in (text, email):
            assert str(escape(shown)) in html, shown
            if any(tag in shown for tag in LIVE_TAGS):
                assert shown not in html
        for tag in LIVE_TAGS:
            assert tag not in html, (text, tag)
        if "{{7*7}}" in text:
            assert "{{7*7}}" in html  # not evaluated as a template


@pytest.mark.parametrize("path", [
    "/dashboard/sub-accounts/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "/dashboard/sub-accounts/?q={{7*7}}&sort=%22%3E%3Csvg%20onload=alert(1)%3E&dir=desc",
    "/dashboard/sub-accounts/?page=%3Cscript%3E",
    "/dashboard/export/?period=custom&start=%22%3E%3Cscript%3Ealert(1)%3C/script%3E&end=x",
    "/dashboard/export/usage.csv?period=%3Csvg%20onload=alert(1)%3E",
    "/dashboard/login/?next=/dashboard/%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "/dashboard/sub-accounts/%3Csvg%20onload=alert(1)%3E/",
])
def test_reflected_parameters_are_escaped(dash: Dash, path: str) -> None:
    anonymous = path.startswith("/dashboard/login/")
    b = dash.browser(None if anonymous else dash.tenants.b)
    response = b.get(path)
    assert response.status_code in (200, 400, 404), path
    for tag in LIVE_TAGS:
        assert tag not in response.text, (path, tag)


def test_search_strings_are_literal(dash: Dash) -> None:
    b = dash.browser(dash.tenants.b)
    for search in ("' OR 1=1 --", "%' OR '%'='", "\\", "_ash", "pm%b1", "%", "*"):
        page = b.get("/dashboard/sub-accounts/", params={"q": search})
        assert page.status_code == 200
        assert dash.tenants.b_sub not in page.text.split("<tbody>")[-1], search


# ---- in a real browser ----------------------------------------------------------------------


@pytest.mark.browser
def test_no_script_runs_in_chromium(dash: Dash, chromium: str) -> None:
    from playwright.sync_api import Dialog, sync_playwright

    t = dash.tenants
    dash.store.accounts.update(t.b_sub, first_name=NAMES[3], last_name=NAMES[2],
                              email=EMAILS[0])
    app = make_app(dash.settings, dash.store, Clock())
    dialogs: list[str] = []
    with LiveServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(bypass_csp=True)  # a live tag would run
            context.set_default_timeout(10_000)
            page = context.new_page()

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto(f"{server.url}/dashboard/login/?next=/dashboard/%22%3E%3Cscript%3E"
                      "alert(3)%3C/script%3E")
            page.get_by_label("Username").fill(t.b)
            page.get_by_label("Password").fill(PARENT_PASSWORD)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert "/login/" not in page.url  # logged in, sent to the (escaped) next path
            page.goto(f"{server.url}/dashboard/sub-accounts/{t.b_sub}/")
            assert page.locator("#edit-first_name").input_value() == NAMES[3]
            assert page.locator("#edit-last_name").input_value() == NAMES[2]
            assert page.locator("#edit-email").input_value() == EMAILS[0]
            assert page.locator("svg[onload], b[onclick], script:not([src])").count() == 0
            page.goto(f"{server.url}/dashboard/sub-accounts/?q=%22%3E%3Csvg%20onload=alert(2)%3E")
            assert page.locator("svg[onload], script:not([src])").count() == 0
            page.wait_for_timeout(200)
        finally:
            browser.close()
    assert dialogs == []


# ---- NUL on both backends (PostgreSQL refuses NUL in any text parameter) ---------------------


def test_nul_never_reaches_the_database(
    db: Store, make_settings: Callable[..., Settings], start_server: StartServer
) -> None:
    """A search, a login name and a Basic username holding NUL: on SQLite a NUL cut the LIKE
    pattern short (every row matched); on PostgreSQL the query failed (500)."""
    settings = dashboard_settings(make_settings)
    tenants = seed_tenants(settings, db)
    with ExitStack() as stack:
        dash = Dash(tenants, db, settings, stack)
        b = dash.browser(tenants.b)
        for search in ("\x00", "pm\x00", "\x00' OR 1=1 --"):
            page = b.get("/dashboard/sub-accounts/", params={"q": search})
            assert page.status_code == 200, search
            assert ROW.findall(page.text) == [], search
        anonymous = dash.browser()
        anonymous.get("/dashboard/login/")
        login = anonymous.post("/dashboard/login/", {"username": "pm\x00x", "password": "pw"})
        assert login.status_code == 400
    api = start_server(store=db)
    for pair in (b"pm\x00x:pw", b"\x00:\x00", tenants.b.encode() + b"\x00:pw"):
        client = api.client(source=fresh_source())
        response = client.get("/api/ips/", headers={
            "Authorization": "Basic " + base64.b64encode(pair).decode()})
        assert response.status_code == 401, (pair, response.text)
