"""The dashboard for the hardening tests: the app of tests/web (helpers.make_app) on a store
holding two tenants (see tenancy.py), and browsers (TestClients keeping cookies and the
page's CSRF token) logged in as any of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from starlette.testclient import TestClient

from meshproxy.config import Settings
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store
from web.helpers import (
    NOW,
    PARENT_PASSWORD,
    SUB_PASSWORD,
    Browser,
    Clock,
    make_app,
    make_parent,
    make_sub,
)

from .tenancy import Tenants, populate, snapshot

PASSWORDS = {"parent": PARENT_PASSWORD, "sub": SUB_PASSWORD}


def dashboard_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        plans=[{"name": "default", "max_sub_accounts": 10, "max_proxies": 3,
                "default_proxies": ["open"]}],
        proxies=[
            {"name": "open", "port": 31280, "geo": True, "egress": [{"country": "US"}]},
            {"name": "world", "port": 31281, "geo": True},
            {"name": "fast", "port": 31282},
        ],
    )


def seed_tenants(settings: Settings, store: Store) -> Tenants:
    """Parents dash_a and dash_b (PARENT_PASSWORD), sub-accounts (SUB_PASSWORD) with IPs,
    hostnames and usage this period."""
    a = make_parent(settings, store, "dash_a")
    b = make_parent(settings, store, "dash_b")
    a_sub = make_sub(store, a, "pm_dash_a1")
    b_sub = make_sub(store, b, "pm_dash_b1", first_name="Bea", monthly_limit_gb=5)
    b_off = make_sub(store, b, "pm_dash_b2")
    world = Tenants(a=a.username, a_sub=a_sub.username, b=b.username, b_sub=b_sub.username,
                    b_off=b_off.username, b_sub_ip="198.51.100.31",
                    b_sub_host="dash-b1.example.com", b_off_ip="198.51.100.32",
                    b_ip="198.51.100.33", b_host="dash-b.example.com")
    populate(store, world)
    day = date(NOW.year, NOW.month, NOW.day)
    store.usage.record([UsageDelta(b_sub.id, b.id, 3 * GB), UsageDelta(a_sub.id, a.id, GB)], day)
    return world


@dataclass
class Dash:
    tenants: Tenants
    store: Store
    settings: Settings
    stack: ExitStack

    def browser(self, username: str | None = None, **kwargs: Any) -> Browser:
        """A new browser (its own cookies), logged in as `username` if given."""
        app = make_app(self.settings, self.store, Clock())
        client = self.stack.enter_context(TestClient(app, follow_redirects=False, **kwargs))
        opened = Browser(client)
        if username is not None:
            kind = "parent" if username in (self.tenants.a, self.tenants.b) else "sub"
            assert opened.login(username, PASSWORDS[kind]).status_code == 303
        return opened

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.store, self.tenants)


@pytest.fixture
def dash(make_settings: Callable[..., Settings], store: Store) -> Iterator[Dash]:
    """The two tenants in a fresh store, and browsers on the dashboard over it."""
    settings = dashboard_settings(make_settings)
    tenants = seed_tenants(settings, store)
    with ExitStack() as stack:
        yield Dash(tenants, store, settings, stack)
