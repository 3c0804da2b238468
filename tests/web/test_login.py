"""Login, logout, sessions and CSRF: signed cookies, the shared ban on failed logins,
password changes ending other sessions, no open redirect after login."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from meshproxy.config import Settings
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from meshproxy.web.secret import SECRET_FILE, load_or_create_secret
from meshproxy.web.sessions import COOKIE_NAME, Session, SessionCodec

from .helpers import PARENT_PASSWORD, SUB_PASSWORD, Browser, Clock, make_app, make_sub


def test_pages_redirect_to_login_and_back(browser: Browser, parent: AccountRecord) -> None:
    response = browser.get("/dashboard/sub-accounts/?page=2")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login/?next=/dashboard/sub-accounts/"
    page = browser.get(response.headers["location"])
    assert 'name="next" value="/dashboard/sub-accounts/"' in page.text
    response = browser.post(
        "/dashboard/login/",
        {"username": "pm_parent", "password": PARENT_PASSWORD, "next": "/dashboard/sub-accounts/"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sub-accounts/"
    assert browser.get("/dashboard/sub-accounts/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/ips/"])
def test_login_never_redirects_off_the_dashboard(
    browser: Browser, parent: AccountRecord, target: str
) -> None:
    browser.get("/dashboard/login/")
    response = browser.post(
        "/dashboard/login/",
        {"username": "pm_parent", "password": PARENT_PASSWORD, "next": target},
    )
    assert response.headers["location"] == "/dashboard/"


def test_wrong_password_is_refused_next_to_the_form(
    browser: Browser, parent: AccountRecord
) -> None:
    response = browser.post("/dashboard/login/", {"username": "pm_parent", "password": "nope"})
    assert response.status_code == 400
    assert "Invalid username or password." in response.text
    assert 'value="pm_parent"' in response.text  # the username stays filled in
    empty = browser.post("/dashboard/login/", {"username": "", "password": ""})
    assert empty.text.count("This field is required.") == 2
    assert browser.get("/dashboard/").status_code == 303  # still not logged in


def test_failed_logins_ban_the_address_even_with_the_right_password(
    browser: Browser, parent: AccountRecord, store: Store, clock: Clock, settings: Settings
) -> None:
    for _ in range(settings.ban.max_failures - 1):
        browser.post("/dashboard/login/", {"username": "pm_parent", "password": "wrong"})
    banned = browser.post("/dashboard/login/", {"username": "nobody", "password": "wrong"})
    assert banned.status_code == 403 and "banned" in banned.text
    assert store.bans.until("testclient", clock()) is not None  # shared with API and proxies
    right = browser.post(
        "/dashboard/login/", {"username": "pm_parent", "password": PARENT_PASSWORD}
    )
    assert right.status_code == 403 and "banned" in right.text
    clock.now += settings.ban.ban_seconds + 1
    assert browser.login("pm_parent", PARENT_PASSWORD).status_code == 303


def test_a_success_resets_the_failure_count(
    browser: Browser, parent: AccountRecord, settings: Settings
) -> None:
    for _ in range(settings.ban.max_failures - 1):
        browser.post("/dashboard/login/", {"username": "pm_parent", "password": "wrong"})
    browser.login("pm_parent", PARENT_PASSWORD)
    browser.post("/dashboard/logout/")
    browser.get("/dashboard/login/")
    response = browser.post("/dashboard/login/", {"username": "pm_parent", "password": "wrong"})
    assert response.status_code == 400  # one failure again, not a ban


def test_session_cookie_is_signed_http_only_and_lax(
    client: TestClient, browser: Browser, parent: AccountRecord
) -> None:
    response = browser.login("pm_parent", PARENT_PASSWORD)
    header = response.headers["set-cookie"]
    assert header.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert "Secure" not in header  # served over plain http here
    assert PARENT_PASSWORD not in header
    forged = SessionCodec(b"another secret").dumps(Session(username="pm_parent", key="x"))
    client.cookies.set(COOKIE_NAME, forged)
    assert browser.get("/dashboard/").status_code == 303


def test_cookie_is_secure_over_https(
    settings: Settings, store: Store, clock: Clock, parent: AccountRecord
) -> None:
    app = make_app(settings, store, clock)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = client.get("/dashboard/login/")
        assert "Secure" in response.headers["set-cookie"]


def test_every_post_needs_the_session_csrf_token(
    client: TestClient, browser: Browser, parent: AccountRecord, store: Store
) -> None:
    make_sub(store, parent, "pm_keep")
    browser.login("pm_parent", PARENT_PASSWORD)
    for token in (None, "forged"):
        data = {"username": "pm_new"} if token is None else {"csrf": token, "username": "pm_new"}
        response = client.post("/dashboard/new-sub-account/", data=data)
        assert response.status_code == 403 and "expired" in response.text
        response = client.post("/dashboard/sub-accounts/pm_keep/delete/", data=data)
        assert response.status_code == 403
    assert store.accounts.get("pm_new") is None and store.accounts.get("pm_keep") is not None
    # A login form needs it too (no login CSRF).
    response = client.post(
        "/dashboard/login/", data={"username": "pm_parent", "password": PARENT_PASSWORD}
    )
    assert response.status_code == 403


def test_login_replaces_the_csrf_token(browser: Browser, parent: AccountRecord) -> None:
    browser.get("/dashboard/login/")
    before = browser.token
    browser.login("pm_parent", PARENT_PASSWORD)
    assert browser.token and browser.token != before


def test_logout_ends_the_session(browser: Browser, parent: AccountRecord) -> None:
    browser.login("pm_parent", PARENT_PASSWORD)
    response = browser.post("/dashboard/logout/")
    assert response.headers["location"] == "/dashboard/login/"
    assert "You have logged out everywhere" in browser.get("/dashboard/login/").text
    assert browser.get("/dashboard/").status_code == 303


def _copy_of(client: TestClient, settings: Settings, store: Store, clock: Clock) -> TestClient:
    """Another client holding the same session cookie (a copy taken by someone else)."""
    copy = TestClient(make_app(settings, store, clock), follow_redirects=False)
    copy.cookies.set(COOKIE_NAME, client.cookies[COOKIE_NAME])
    return copy


def test_logout_ends_every_copy_of_every_session(
    client: TestClient, browser: Browser, parent: AccountRecord, settings: Settings,
    store: Store, clock: Clock,
) -> None:
    browser.login("pm_parent", PARENT_PASSWORD)
    with (
        _copy_of(client, settings, store, clock) as copied,
        TestClient(make_app(settings, store, clock), follow_redirects=False) as elsewhere,
    ):
        other = Browser(elsewhere)
        other.login("pm_parent", PARENT_PASSWORD)
        assert copied.get("/dashboard/").status_code == 200
        browser.post("/dashboard/logout/")
        assert copied.get("/dashboard/").status_code == 303  # the copy died with it
        assert other.get("/dashboard/").status_code == 303  # so did the other device's
        assert browser.login("pm_parent", PARENT_PASSWORD).status_code == 303
        assert browser.get("/dashboard/").status_code == 200  # a fresh login works
        assert copied.get("/dashboard/").status_code == 303  # the old copy stays dead


def _change_password(browser: Browser, new: str) -> Any:
    """The password form, filled in right (the current password is the parent's)."""
    return browser.post(
        "/dashboard/password/",
        {"current_password": PARENT_PASSWORD, "new_password": new, "confirm_password": new},
    )


def test_password_change_ends_a_copied_session(
    client: TestClient, browser: Browser, parent: AccountRecord, settings: Settings,
    store: Store, clock: Clock,
) -> None:
    browser.login("pm_parent", PARENT_PASSWORD)
    with _copy_of(client, settings, store, clock) as copied:
        assert _change_password(browser, "new-secret").status_code == 303
        assert copied.get("/dashboard/").status_code == 303
        assert browser.get("/dashboard/").status_code == 200  # the session that changed it
        # Its new cookie carries the new epoch; the copy of the old one stays refused.
        assert copied.get("/dashboard/password/").status_code == 303


def test_password_set_by_the_parent_ends_the_sub_accounts_sessions(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    """Any password change ends the sessions (here the API's edit, by the store)."""
    make_sub(store, parent, "pm_sub")
    browser.login("pm_sub", SUB_PASSWORD)
    epoch = store.accounts.get("pm_sub").session_epoch  # type: ignore[union-attr]
    store.accounts.update("pm_sub", first_name="Kept")  # no password: sessions go on
    assert browser.get("/dashboard/").status_code == 200
    updated = store.accounts.update("pm_sub", password_hash=hash_password("x"))
    assert updated is not None and updated.session_epoch == epoch + 1
    assert browser.get("/dashboard/").status_code == 303


def test_a_cookie_without_the_epoch_is_nobodys(
    client: TestClient, settings: Settings, browser: Browser, parent: AccountRecord
) -> None:
    """A session signed with the right key but without the epoch (or a wrong one) is not
    honoured: the epoch is checked on every request."""
    browser.login("pm_parent", PARENT_PASSWORD)
    codec = SessionCodec(load_or_create_secret(Path(settings.data_dir)))
    session = codec.loads(client.cookies[COOKIE_NAME])
    assert session is not None and session.epoch == parent.session_epoch
    for epoch in (None, parent.session_epoch + 1):
        client.cookies.set(COOKIE_NAME, codec.dumps(replace(session, epoch=epoch)))
        assert browser.get("/dashboard/").status_code == 303


def test_password_change_checks_and_ends_other_sessions(
    settings: Settings, store: Store, clock: Clock, parent: AccountRecord
) -> None:
    app = make_app(settings, store, clock)
    with (
        TestClient(app, follow_redirects=False) as first,
        TestClient(app, follow_redirects=False) as second,
    ):
        me, other = Browser(first), Browser(second)
        me.login("pm_parent", PARENT_PASSWORD)
        other.login("pm_parent", PARENT_PASSWORD)
        bad = me.post(
            "/dashboard/password/",
            {"current_password": "wrong", "new_password": "a", "confirm_password": "b"},
        )
        assert bad.status_code == 400
        assert "Your current password was entered incorrectly." in bad.text
        assert "The two password fields didn&#39;t match." in bad.text
        long = me.post(
            "/dashboard/password/",
            {
                "current_password": PARENT_PASSWORD,
                "new_password": "x" * 129,
                "confirm_password": "x" * 129,
            },
        )
        assert "Ensure this value has at most 128 characters (it has 129)." in long.text
        assert _change_password(me, "new-secret").status_code == 303
        assert me.get("/dashboard/").status_code == 200  # this session goes on
        assert other.get("/dashboard/").status_code == 303  # the other one ended
        assert other.login("pm_parent", "new-secret").status_code == 303


def test_deleted_account_is_logged_out(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    make_sub(store, parent, "pm_gone")
    browser.login("pm_gone", SUB_PASSWORD)
    assert browser.get("/dashboard/").status_code == 200
    store.accounts.delete("pm_gone")
    assert browser.get("/dashboard/").status_code == 303


def test_deactivated_account_may_log_in_and_is_told(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    make_sub(store, parent, "pm_off", active=False)
    browser.login("pm_off", SUB_PASSWORD)
    assert "This account is deactivated" in browser.get("/dashboard/").text


def test_sub_account_without_password_cannot_log_in(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    store.accounts.create("pm_ipauth", parent_id=parent.id)
    response = browser.post("/dashboard/login/", {"username": "pm_ipauth", "password": "x"})
    assert response.status_code == 400


def test_secret_is_generated_once_and_private(
    settings: Settings, store: Store, clock: Clock, parent: AccountRecord
) -> None:
    path = Path(settings.data_dir) / SECRET_FILE
    with TestClient(make_app(settings, store, clock), follow_redirects=False) as client:
        Browser(client).login("pm_parent", PARENT_PASSWORD)
        cookie = client.cookies[COOKIE_NAME]
    assert path.stat().st_mode & 0o777 == 0o600
    # A restart reads the same secret: the session survives.
    with TestClient(make_app(settings, store, clock), follow_redirects=False) as client:
        client.cookies.set(COOKIE_NAME, cookie)
        assert client.get("/dashboard/").status_code == 200


def test_responses_carry_security_headers(browser: Browser, parent: AccountRecord) -> None:
    response = browser.get("/dashboard/login/")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["server-timing"].startswith("app;dur=")
