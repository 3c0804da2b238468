"""CSRF, session fixation and forged cookies on the dashboard (tests/web/test_login.py has
the basics: no token or a made-up one refused, cookie flags, another key's signature, the
login ban). Here: another session's token, a token from before login, tokens a naive
comparison chokes on, a planted pre-login cookie, tampered payloads and signatures; each
refused and nothing changed."""

from __future__ import annotations

import base64
from http.cookiejar import CookieJar

import pytest

from meshproxy.web.sessions import COOKIE_NAME
from web.helpers import Browser, csrf_of

from .dashboard import Dash


def _edit(dash: Dash) -> tuple[str, dict[str, str]]:
    return (f"/dashboard/sub-accounts/{dash.tenants.a_sub}/edit/",
            {"first_name": "csrf", "monthly_limit": "1"})


@pytest.mark.parametrize("token", ["", "x", "é" * 32, "\x00", "a" * 10_000, " "])
def test_posts_with_a_bad_csrf_token_are_refused(dash: Dash, token: str) -> None:
    a = dash.browser(dash.tenants.a)
    before = dash.snapshot()
    path, form = _edit(dash)
    response = a.client.post(path, data={**form, "csrf": token})
    assert response.status_code == 403 and "expired" in response.text  # never a 500
    deleted = a.client.post(f"/dashboard/sub-accounts/{dash.tenants.a_sub}/delete/",
                            data={"csrf": token})
    assert deleted.status_code == 403
    assert dash.snapshot() == before


def test_another_sessions_token_is_refused(dash: Dash) -> None:
    """A token lifted from another session (the attacker's own, or the victim's other
    browser) is worth nothing in this one."""
    a, attacker, a_elsewhere = (dash.browser(dash.tenants.a), dash.browser(dash.tenants.b),
                                dash.browser(dash.tenants.a))
    anonymous = dash.browser()
    anonymous.get("/dashboard/login/")
    before = dash.snapshot()
    path, form = _edit(dash)
    for foreign in (attacker.token, a_elsewhere.token, anonymous.token):
        assert foreign and foreign != a.token
        response = a.client.post(path, data={**form, "csrf": foreign})
        assert response.status_code == 403
    assert dash.snapshot() == before
    assert a.post(path, form).status_code == 303  # its own token works


def test_a_token_from_before_login_is_refused_after(dash: Dash) -> None:
    victim = dash.browser()
    planted = csrf_of(victim.get("/dashboard/login/").text)
    assert victim.login(dash.tenants.a, "parent-secret").status_code == 303
    before = dash.snapshot()
    path, form = _edit(dash)
    assert victim.client.post(path, data={**form, "csrf": planted}).status_code == 403
    assert dash.snapshot() == before


def _domain(browser: Browser) -> str:
    """The domain the app's cookie is stored under (so a planted one is replaced, as in a
    real browser, rather than kept beside it)."""
    jar: CookieJar = browser.client.cookies.jar  # httpx's jar (TestClient's cookies are untyped)
    return next(c.domain for c in jar if c.name == COOKIE_NAME)


def test_session_fixation(dash: Dash) -> None:
    """The attacker plants its own (pre-login) cookie in the victim's browser; after the
    victim logs in, the attacker's cookie is still nobody's."""
    attacker = dash.browser()
    attacker.get("/dashboard/login/")
    planted = attacker.client.cookies[COOKIE_NAME]
    victim = dash.browser()
    victim.client.cookies.set(COOKIE_NAME, planted, domain=_domain(attacker))
    assert victim.login(dash.tenants.a, "parent-secret").status_code == 303
    assert victim.get("/dashboard/").status_code == 200
    assert victim.client.cookies[COOKIE_NAME] != planted
    assert attacker.get("/dashboard/").status_code == 303  # still anonymous
    replay = dash.browser()
    replay.client.cookies.set(COOKIE_NAME, planted)
    assert replay.get("/dashboard/").status_code == 303


def test_logout_clears_the_session_in_the_browser(dash: Dash) -> None:
    a = dash.browser(dash.tenants.a)
    logged_in = a.client.cookies[COOKIE_NAME]
    a.post("/dashboard/logout/")
    assert a.client.cookies[COOKIE_NAME] != logged_in
    assert a.get("/dashboard/").status_code == 303
    path, form = _edit(dash)
    assert a.post(path, form).status_code == 303  # to the login page: nothing done
    assert dash.store.accounts.get(dash.tenants.a_sub).first_name is None  # type: ignore[union-attr]


def _flip(text: str, index: int) -> str:
    swapped = "A" if text[index] != "A" else "B"
    return text[:index] + swapped + text[index + 1:]


def test_tampered_cookies_are_nobodys(dash: Dash) -> None:
    a = dash.browser(dash.tenants.a)
    cookie = a.client.cookies[COOKIE_NAME]
    payload, timestamp, signature = cookie.rsplit(".", 2)
    padded = payload + "=" * (-len(payload) % 4)
    data = base64.urlsafe_b64decode(padded).replace(dash.tenants.a.encode(),
                                                    dash.tenants.b.encode())
    as_b = base64.urlsafe_b64encode(data).decode().rstrip("=")
    forged = [
        _flip(cookie, len(cookie) - 3),  # the signature
        _flip(cookie, 2),  # the payload
        f"{as_b}.{timestamp}.{signature}",  # another username, old signature
        f"{payload}.{timestamp}.",  # no signature
        f"{payload}.{timestamp}",
        "",
        "x" * 5000,
        "%C3%A9.%00.\\",
    ]
    for value in forged:
        other = dash.browser()
        other.client.cookies.set(COOKIE_NAME, value)
        response = other.get("/dashboard/")
        assert response.status_code == 303, value
        assert other.get(f"/dashboard/sub-accounts/{dash.tenants.b_sub}/").status_code == 303
