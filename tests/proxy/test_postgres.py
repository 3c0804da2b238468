"""The data plane over PostgreSQL: the same node, metering and quota decisions, with the
store in its own schema of the local server (the `store` fixture is overridden here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from meshproxy.store import Store

from .conftest import Env
from .test_metering import close_to, curl_bytes


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    opened = Store.open(postgres_url)
    yield opened
    opened.close()


def test_usage_is_metered_into_postgresql_for_account_and_parent(env: Env) -> None:
    parent = env.store.accounts.get("alice")
    assert parent is not None
    env.account("pg_sub", parent=parent)
    env.sync()
    moved = curl_bytes("-x", env.proxy_url(user="pg_sub"), env.origins.url("/bytes/2000000"))
    moved += curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/300000"))
    env.flush()
    sub_monthly, sub_total = env.usage("pg_sub")
    parent_monthly, parent_total = env.usage("alice")
    assert sub_monthly == sub_total > 2_000_000
    assert close_to(moved, parent_total) and parent_monthly == parent_total


def test_deactivation_in_postgresql_reaches_the_node(env: Env) -> None:
    proxies = {"http": env.proxy_url()}
    assert requests.get(env.origins.url("/echo"), proxies=proxies, timeout=10).status_code == 200
    env.store.accounts.update("alice", active=False)
    env.sync()
    assert requests.get(env.origins.url("/echo"), proxies=proxies, timeout=10).status_code == 402
