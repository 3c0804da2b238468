"""The ban: 4 authentication failures from one client IP within 10 minutes ban that IP for
3 hours (401 even with correct credentials); a success resets the count. Time is the
server's injectable clock; every test uses its own loopback source address."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meshproxy.domain import passwords

from .harness import Parent, Running, StartServer, fresh_source

WINDOW = 600
BAN = 10_800


def fail(api: Running, parent: Parent, source: str, times: int) -> list[httpx.Response]:
    client = api.client(auth=(parent.username, "wrong password"), source=source)
    return [client.get("/api/ips/") for _ in range(times)]


def test_four_failures_ban_the_ip_for_three_hours(api: Running, parent: Parent) -> None:
    source = fresh_source()
    good = parent.client(source=source)
    responses = fail(api, parent, source, 4)
    assert [r.status_code for r in responses] == [401] * 4
    response = good.get("/api/ips/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="')
    assert int(response.headers["retry-after"]) == BAN
    assert "error" in response.json()
    # Only that IP: the same account from elsewhere is fine.
    assert parent.client(source=fresh_source()).get("/api/ips/").status_code == 200
    api.clock.advance(BAN - 1)
    assert good.get("/api/ips/").status_code == 401
    api.clock.advance(1)
    assert good.get("/api/ips/").status_code == 200


def test_three_failures_do_not_ban(api: Running, parent: Parent) -> None:
    source = fresh_source()
    fail(api, parent, source, 3)
    assert parent.client(source=source).get("/api/ips/").status_code == 200


def test_a_success_resets_the_count(api: Running, parent: Parent) -> None:
    source = fresh_source()
    fail(api, parent, source, 3)
    assert parent.client(source=source).get("/api/ips/").status_code == 200
    fail(api, parent, source, 3)
    assert parent.client(source=source).get("/api/ips/").status_code == 200


def test_failures_older_than_the_window_do_not_count(api: Running, parent: Parent) -> None:
    source = fresh_source()
    fail(api, parent, source, 3)
    api.clock.advance(WINDOW + 1)
    fail(api, parent, source, 1)
    assert parent.client(source=source).get("/api/ips/").status_code == 200
    # Four within the window do.
    fail(api, parent, source, 3)
    api.clock.advance(WINDOW - 60)
    fail(api, parent, source, 1)
    assert parent.client(source=source).get("/api/ips/").status_code == 401


def test_requests_without_credentials_are_not_failures(api: Running, parent: Parent) -> None:
    source = fresh_source()
    anonymous = api.client(source=source)
    assert all(anonymous.get("/api/ips/").status_code == 401 for _ in range(6))
    assert parent.client(source=source).get("/api/ips/").status_code == 200


def test_unknown_usernames_count_as_failures(api: Running, parent: Parent) -> None:
    source = fresh_source()
    stranger = api.client(auth=("no-such-user", "x"), source=source)
    for _ in range(4):
        assert stranger.get("/api/ips/").status_code == 401
    assert parent.client(source=source).get("/api/ips/").status_code == 401


def test_a_ban_recorded_by_a_proxy_node_applies_to_the_api(api: Running, parent: Parent) -> None:
    source = fresh_source()
    policy = api.settings.ban.policy()
    for _ in range(4):  # as a proxy node does on failed Proxy-Authorization
        api.store.bans.record_failure(source, api.clock(), policy)
    assert parent.client(source=source).get("/api/ips/").status_code == 401


def test_the_three_numbers_are_settings(start_server: StartServer) -> None:
    server = start_server(ban={"max_failures": 2, "window_seconds": 60, "ban_seconds": 30})
    parent = server.parent()
    source = fresh_source()
    fail(server, parent, source, 2)
    response = parent.client(source=source).get("/api/ips/")
    assert response.status_code == 401
    assert response.headers["retry-after"] == "30"
    server.clock.advance(30)
    assert parent.client(source=source).get("/api/ips/").status_code == 200
    fail(server, parent, source, 1)
    server.clock.advance(61)
    fail(server, parent, source, 1)
    assert parent.client(source=source).get("/api/ips/").status_code == 200


def test_behind_a_trusted_front_proxy_the_forwarded_client_is_banned(
    start_server: StartServer,
) -> None:
    server = start_server(api={"trusted_proxies": ["127.0.0.1/32"], "require_https": False})
    parent = server.parent()
    front = server.client(auth=(parent.username, "wrong"), source="127.0.0.1")
    for _ in range(4):
        response = front.get("/api/ips/", headers={"X-Forwarded-For": "203.0.113.5"})
        assert response.status_code == 401
    good = parent.client(source="127.0.0.1")
    assert good.get("/api/ips/", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 401
    assert good.get("/api/ips/", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 200
    # An untrusted peer cannot pick its address with the header.
    other = parent.client(source=fresh_source())
    assert other.get("/api/ips/", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200


def test_a_burst_verifies_the_password_once(
    api: Running, parent: Parent, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    real = passwords.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    client = parent.client(source=fresh_source())
    for _ in range(5):
        assert client.get("/api/ips/").status_code == 200
    assert len(calls) == 1
    # A changed password is verified anew (the cache is keyed by the stored hash).
    api.store.accounts.update(parent.username, password_hash=passwords.hash_password("new"))
    assert client.get("/api/ips/").status_code == 401
    new = parent.api.client(auth=(parent.username, "new"), source=fresh_source())
    assert new.get("/api/ips/").status_code == 200
    assert len(calls) == 3
