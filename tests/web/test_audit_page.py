"""The audit log on the dashboard: a parent sees the changes to its own accounts (by
itself, by a sub-account on its own page, by the operator), never another parent's, and
never a password."""

from __future__ import annotations

from meshproxy.config import Settings
from meshproxy.control.audit import Origin, acting_from
from meshproxy.control.operator import update_parent
from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store

from .helpers import PARENT_PASSWORD, SUB_PASSWORD, Browser, make_parent, make_sub


def test_changes_are_recorded_with_who_what_and_where(
    browser: Browser, parent: AccountRecord, store: Store, settings: Settings
) -> None:
    other = make_parent(settings, store, "pm_other")
    make_sub(store, parent, "pm_sub")
    browser.login("pm_parent", PARENT_PASSWORD)
    created = browser.post(
        "/dashboard/new-sub-account/", {"username": "pm_new", "password": "new-sub-password"}
    )
    assert created.status_code == 303
    browser.post("/dashboard/sub-accounts/pm_new/edit/", {"monthly_limit": "7"})
    browser.post("/dashboard/logout/")
    browser.login("pm_sub", SUB_PASSWORD)
    assert browser.post("/dashboard/access/ip/add/", {"ip": "10.0.0.9"}).status_code == 303
    with acting_from(Origin("cli", "root@host")):
        update_parent(settings, store, "pm_other", monthly_limit=3)

    entries = store.audit.entries(owner_id=parent.id)
    seen = [(e.actor, e.operation, e.target, e.via) for e in entries]
    assert seen == [
        ("pm_sub", "ip.add", "pm_sub", "dashboard"),  # the sub-account, on its own page
        ("pm_parent", "sub.edit", "pm_new", "dashboard"),
        ("pm_parent", "sub.create", "pm_new", "dashboard"),
        ("operator", "parent.create", "pm_parent", "local"),
    ]
    assert entries[0].fields == {"ip": "10.0.0.9"} and entries[0].client == "testclient"
    assert entries[1].fields == {"monthly_limit": "7"}
    assert entries[2].fields["password"] == "(redacted)"
    [other_set, _] = store.audit.entries(owner_id=other.id)
    assert (other_set.actor, other_set.operation, other_set.via) == (
        "operator",
        "parent.set",
        "cli",
    )
    assert other_set.fields == {"monthly_limit": "3"} and other_set.client == "root@host"

    browser.post("/dashboard/logout/")
    browser.login("pm_parent", PARENT_PASSWORD)
    page = browser.get("/dashboard/audit/")
    assert page.status_code == 200
    assert "sub.create" in page.text and "ip.add" in page.text and "monthly_limit=7" in page.text
    assert "new-sub-password" not in page.text and "password=(redacted)" in page.text
    assert "parent.set" not in page.text  # pm_other's
    browser.post("/dashboard/logout/")
    browser.login("pm_sub", SUB_PASSWORD)
    assert browser.get("/dashboard/audit/").status_code == 403  # parents only


def test_reads_and_refusals_are_not_recorded(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    browser.login("pm_parent", PARENT_PASSWORD)
    browser.get("/dashboard/sub-accounts/")
    browser.get("/dashboard/access/")
    refused = browser.post("/dashboard/access/ip/add/", {"ip": "10.0.0.300"})
    assert refused.status_code == 400
    assert [e.operation for e in store.audit.entries(owner_id=parent.id)] == ["parent.create"]


def test_own_password_change_is_recorded_without_the_password(
    browser: Browser, parent: AccountRecord, store: Store
) -> None:
    browser.login("pm_parent", PARENT_PASSWORD)
    changed = browser.post(
        "/dashboard/password/",
        {
            "current_password": PARENT_PASSWORD,
            "new_password": "another-secret",
            "confirm_password": "another-secret",
        },
    )
    assert changed.status_code == 303
    latest = store.audit.entries(owner_id=parent.id)[0]
    assert (latest.actor, latest.operation, latest.via) == (
        "pm_parent",
        "account.password",
        "dashboard",
    )
    assert latest.fields == {"password": "(redacted)"}
