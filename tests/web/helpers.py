"""Shared by the dashboard's tests: a settable clock, seeded accounts, and a TestClient that
logs in and posts forms with the page's CSRF token, as a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from meshproxy.config import Settings
from meshproxy.control.operator import create_parent
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from meshproxy.web import dashboard_routes

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PARENT_PASSWORD = "parent-secret"
SUB_PASSWORD = "sub-secret"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


def make_app(settings: Settings, store: Store, clock: Clock) -> Starlette:
    return Starlette(routes=dashboard_routes(settings, store, clock=clock))


def make_parent(
    settings: Settings, store: Store, username: str = "pm_parent", **fields: Any
) -> AccountRecord:
    parent = create_parent(
        settings, store, username, password=PARENT_PASSWORD, billing_day=10, now=NOW
    ).account
    if fields:
        updated = store.accounts.update(username, **fields)
        assert updated is not None
        parent = updated
    return parent


def make_sub(store: Store, parent: AccountRecord, username: str, **fields: Any) -> AccountRecord:
    return store.accounts.create(
        username,
        parent_id=parent.id,
        password_hash=hash_password(SUB_PASSWORD),
        now=NOW,
        **fields,
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@dataclass
class Browser:
    """A TestClient that keeps its cookies and fills in the CSRF token of the last page."""

    client: TestClient
    token: str = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            match = _CSRF.search(response.text)
            if match:
                self.token = match.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        if not self.token:
            self.get("/dashboard/login/")
        body = {"csrf": self.token, **(data or {})}
        response = self.client.post(path, data=body, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            match = _CSRF.search(response.text)
            if match:
                self.token = match.group(1)
        return response

    def login(self, username: str, password: str) -> Any:
        self.get("/dashboard/login/")
        response = self.post("/dashboard/login/", {"username": username, "password": password})
        self.get("/dashboard/")  # a fresh token: logging in replaces the session's
        return response
