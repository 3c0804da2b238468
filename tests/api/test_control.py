"""The control layer without HTTP: what the dashboard will call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from meshproxy.config import Settings
from meshproxy.control import access_lists, proxies, subaccounts
from meshproxy.control.errors import (
    Forbidden,
    FormInvalid,
    NotFound,
    PaymentRequired,
    PlanUnavailable,
    Unavailable,
)
from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store
from meshproxy.store.engine import make_engine

from .harness import settings_for

NOW = datetime(2025, 10, 9, 12, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return settings_for(tmp_path / "data")


@pytest.fixture
def parent(store: Store) -> AccountRecord:
    return store.accounts.create("boss", plan="tiny", billing_day=9, proxies=["open"])


def test_a_sub_account_caller_is_forbidden_everything(
    settings: Settings, store: Store, parent: AccountRecord
) -> None:
    sub = subaccounts.create_sub_account(settings, store, parent, {"username": "pm_a"}, now=NOW)
    caller = store.accounts.get(sub["username"])
    assert caller is not None
    for operation in (
        subaccounts.get_sub_account,
        subaccounts.list_sub_accounts,
        access_lists.list_ips,
        proxies.list_proxies,
        proxies.geoips,
    ):
        with pytest.raises(Forbidden):
            operation(settings, store, caller, {"username": "pm_a", "name": "open"}, now=NOW)


def test_typed_errors(settings: Settings, store: Store, parent: AccountRecord) -> None:
    with pytest.raises(FormInvalid) as invalid:
        subaccounts.create_sub_account(settings, store, parent, {"username": "x" * 31})
    assert invalid.value.status == 400 and list(invalid.value.errors) == ["username"]
    with pytest.raises(NotFound):
        subaccounts.get_sub_account(settings, store, parent, {"username": "pm_ghost"})
    subaccounts.create_sub_account(settings, store, parent, {"username": "pm_1"})
    subaccounts.create_sub_account(settings, store, parent, {"username": "pm_2"})
    with pytest.raises(PaymentRequired) as full:
        subaccounts.create_sub_account(settings, store, parent, {"username": "pm_3"})
    assert full.value.status == 402
    page = subaccounts.list_sub_accounts(settings, store, parent, {}, now=NOW)
    assert [s["username"] for s in page["sub_accounts"]] == ["pm_1", "pm_2"]
    assert proxies.add_proxy(settings, store, parent, {"proxy": "world"}) == {
        "proxy": "world.proxymesh.test"
    }
    with pytest.raises(PaymentRequired):
        proxies.add_proxy(settings, store, parent, {"proxy": "plain"})


def test_unknown_plan_is_plan_unavailable(settings: Settings, store: Store) -> None:
    orphan = store.accounts.create("orphan", plan="gone", billing_day=1)
    with pytest.raises(PlanUnavailable) as error:
        proxies.add_proxy(settings, store, orphan, {"proxy": "open"})
    assert error.value.status == 503 and error.value.retry_after > 0


@pytest.fixture
def unreachable() -> Iterator[Store]:
    store = Store(make_engine("postgresql://nobody@127.0.0.1:1/none"))
    yield store
    store.close()


def test_an_unreachable_store_is_unavailable(
    settings: Settings, unreachable: Store, store: Store, parent: AccountRecord
) -> None:
    with pytest.raises(Unavailable) as error:
        access_lists.list_ips(settings, unreachable, parent, {})
    assert error.value.status == 503
