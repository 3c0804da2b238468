"""Fixtures of the dashboard's tests: settings in tmp_path, a parent, an app, a browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from meshproxy.config import Settings
from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store

from .helpers import Browser, Clock, make_app, make_parent


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        plans=[
            {
                "name": "default",
                "max_sub_accounts": 3,
                "max_proxies": 2,
                "default_proxies": ["open"],
            },
        ],
        proxies=[
            {
                "name": "open",
                "port": 31280,
                "geo": True,
                "egress": [
                    {"country": "US"},
                    {"address": "127.0.0.2", "country": "US"},
                    {"address": "127.0.0.3", "country": "DE"},
                ],
            },
            {"name": "world", "port": 31281, "geo": True},
            {"name": "fast", "port": 31282},
        ],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parent(settings: Settings, store: Store) -> AccountRecord:
    return make_parent(settings, store)


@pytest.fixture
def client(settings: Settings, store: Store, clock: Clock) -> Iterator[TestClient]:
    with TestClient(make_app(settings, store, clock), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)
