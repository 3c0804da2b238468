"""A credential the node's directory does not know is read through from the store once
before it fails (issue 12 item 4): an account created or a password changed through the
API works on the proxy at once, with no 407 and no failure counted toward a ban."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from meshproxy.domain.accounts import AccountView
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.readthrough import StoreLookups
from meshproxy.store import Store
from support.polling import wait_until

from .api_face import api_base, api_client  # noqa: F401 (a fixture)
from .conftest import Env
from .test_core_directory import authenticate, basic, directory, record, view


class FakeStore:
    """The store's accounts by username, counting the lookups."""

    def __init__(self, *views: AccountView) -> None:
        self.views = {v.account.username: v for v in views}
        self.calls = 0
        self.gate: threading.Event | None = None

    def lookup(self, username: str) -> AccountView | None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        return self.views.get(username)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_account_the_directory_does_not_know_yet_is_read_through() -> None:
    d = directory(view(record(1, "alice")))
    store = FakeStore(view(record(2, "newsub", parent=1)))
    d.read_through = StoreLookups(store.lookup, Clock())
    found = authenticate(d, basic("newsub", "pw"))
    assert isinstance(found, AccountState) and found.username == "newsub"
    assert found.parent is d.by_username["alice"] and "open" in found.proxies
    assert d.auth_failures == 0 and not d.auth_reports
    assert authenticate(d, basic("newsub", "pw")) is found  # remembered: no second lookup
    assert store.calls == 1
    assert d.refusal(found, "open") is None


def test_a_changed_password_is_read_through_and_the_old_one_stops() -> None:
    d = directory(view(record(1, "alice")))
    assert isinstance(authenticate(d, basic("alice", "pw")), AccountState)
    store = FakeStore(view(record(1, "alice", password_hash=hash_password("new"))))
    d.read_through = StoreLookups(store.lookup, Clock())
    assert authenticate(d, basic("alice", "new")) is d.by_username["alice"]
    assert d.auth_failures == 0
    wrong = authenticate(d, basic("alice", "pw"))  # the old password no longer verifies
    assert not isinstance(wrong, AccountState) and d.auth_failures == 1


def test_a_hyphenated_account_is_not_taken_for_options_before_the_feed_brings_it() -> None:
    """`pm_a-country-us` and `pm_a-x`, created a moment ago beside `pm_a`: read as pm_a
    plus options (or options that do not parse), pm_a's password does not verify, so the
    store is asked for the whole name before the check fails."""
    d = directory(view(record(1, "pm_a")))
    other = hash_password("other")
    store = FakeStore(view(record(2, "pm_a-country-us", parent=1, password_hash=other)),
                      view(record(3, "pm_a-x", parent=1, password_hash=other)))
    d.read_through = StoreLookups(store.lookup, Clock())
    for name in ("pm_a-country-us", "pm_a-x"):
        found = authenticate(d, basic(name, "other"))
        assert isinstance(found, AccountState) and found.username == name, found
        assert d.logins.found(basic(name, "other")) is None  # no options: an account
        assert authenticate(d, basic(name, "other")) is found  # remembered
    assert d.auth_failures == 0 and not d.auth_reports
    # pm_a with options still works; a wrong password still fails and counts.
    steered = authenticate(d, basic("pm_a-country-de", "pw"))
    assert isinstance(steered, AccountState) and steered.username == "pm_a"
    wrong = authenticate(d, basic("pm_a-country-de", "other"))
    assert not isinstance(wrong, AccountState) and d.auth_failures == 1


def test_a_name_the_store_lacks_too_is_remembered_briefly() -> None:
    d = directory(view(record(1, "alice")))
    store, clock = FakeStore(), Clock()
    d.read_through = StoreLookups(store.lookup, clock, forget_after=1.0)
    for i in range(3):
        assert not isinstance(authenticate(d, basic("ghost", "pw"), now=100 + i), AccountState)
    assert store.calls == 1 and d.auth_failures == 3  # unknown credentials still fail
    clock.now += 1.5
    authenticate(d, basic("ghost", "pw"), ip="10.0.0.2")
    assert store.calls == 2
    # The feed bringing the name ends the memory at once.
    store.views["ghost"] = view(record(3, "ghost", parent=1))
    d.update({"ghost"}, [], d_now(), {})
    assert isinstance(authenticate(d, basic("ghost", "pw"), ip="10.0.0.3"), AccountState)
    assert store.calls == 3


def d_now() -> Any:
    from .test_core_directory import NOW

    return NOW


def test_one_lookup_in_flight_per_username() -> None:
    store = FakeStore()
    store.gate = threading.Event()
    lookups = StoreLookups(store.lookup, Clock())
    answers: list[AccountView | None] = []
    threads = [threading.Thread(target=lambda: answers.append(lookups.fetch("x")))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: store.calls, 5, "no lookup started", interval=0.005)
    time.sleep(0.05)  # the other four are waiting for the first one's answer
    store.gate.set()
    for thread in threads:
        thread.join(5)
    assert store.calls == 1 and answers == [None] * 5


def test_an_outage_is_not_remembered() -> None:
    calls: list[str] = []

    def down(username: str) -> AccountView | None:
        calls.append(username)
        raise OSError("store down")

    lookups = StoreLookups(down, Clock())
    assert lookups.fetch("x") is None and lookups.fetch("x") is None
    assert calls == ["x", "x"]


# ---- through the API and a real node, on SQLite and PostgreSQL -----------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    opened = Store.open(url)
    yield opened
    opened.close()


@pytest.fixture
def api(env: Env, api_base: str) -> Iterator[httpx.Client]:  # noqa: F811
    """The API over the node's store, as a reseller on the default plan."""
    env.account("reseller", plan="default")
    with api_client(api_base, "reseller", "pw") as client:
        yield client


def test_created_through_the_api_and_used_at_once_fifty_times(
    env: Env, api: httpx.Client
) -> None:
    session = requests.Session()
    failures = env.node.directory.auth_failures
    for i in range(50):
        name, password = f"pm_rt{i}", f"password-{i}"
        created = api.post("/api/sub/create/", data={"username": name, "password": password})
        assert created.status_code == 200, created.text
        proxies = {"http": env.proxy_url(user=name, password=password)}
        answer = session.get(env.origins.url("/echo"), proxies=proxies, timeout=10)
        assert answer.status_code == 200, (i, answer.status_code, answer.text)
    assert env.node.directory.auth_failures == failures  # nothing counted toward a ban
    assert env.store.bans.until("127.0.0.1", time.time()) is None
    # A password changed through the API works at once too; the old one then fails.
    edited = api.post("/api/sub/edit/", data={"username": "pm_rt0", "password": "changed-0"})
    assert edited.status_code in (200, 204), edited.text
    proxies = {"http": env.proxy_url(user="pm_rt0", password="changed-0")}
    assert session.get(env.origins.url("/echo"), proxies=proxies, timeout=10).status_code == 200
    assert env.node.directory.auth_failures == failures


def test_hyphenated_accounts_created_through_the_api_work_at_once(
    env: Env, api: httpx.Client
) -> None:
    """Beside a known `pm_a`, sub-accounts whose names read as pm_a plus options (or as
    options that do not parse) are used the moment they are created: no 407, nothing
    counted toward a ban, each served as itself (no country steered)."""
    session = requests.Session()
    created = api.post("/api/sub/create/", data={"username": "pm_a", "password": "base-pw"})
    assert created.status_code == 200, created.text
    env.sync()  # pm_a is the directory's
    failures = env.node.directory.auth_failures
    for name in ("pm_a-country-us", "pm_a-session-x1", "pm_a-x", "pm_a-country-us-extra"):
        password = f"own-{name}"  # (one of pm_a's, or an earlier one's: read as it with options)
        created = api.post("/api/sub/create/", data={"username": name, "password": password})
        assert created.status_code == 200, created.text
        proxies = {"http": env.proxy_url(user=name, password=password)}
        for _ in range(2):
            answer = session.get(env.origins.url("/echo"), proxies=proxies, timeout=10)
            assert answer.status_code == 200, (name, answer.status_code, answer.text)
        assert env.node.directory.by_username[name].username == name
    assert env.node.directory.auth_failures == failures
    assert env.store.bans.until("127.0.0.1", time.time()) is None
