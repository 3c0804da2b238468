"""An API smoke test over PostgreSQL: a parent's sub-account lifecycle with usage, and
lookups of names no account can have."""

from __future__ import annotations

from datetime import UTC, datetime

from meshproxy.domain.accounts import UsageDelta
from meshproxy.store import Store

from .harness import StartServer, fresh_source


def test_sub_account_lifecycle_on_postgresql(start_server: StartServer, postgres_url: str) -> None:
    running = start_server(store=Store.open(postgres_url))
    parent = running.parent()
    client = parent.client(source=fresh_source())
    username = parent.create_sub(client, password="s3cret-pass", monthly_limit="5")
    sub = running.store.accounts.get(username)
    assert sub is not None
    running.store.usage.record([UsageDelta(sub.id, sub.parent_id, 1_500_000_000)],
                               datetime.now(UTC).date())
    got = client.get("/api/sub/get/", params={"username": username})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["monthly_bandwidth_limit"] == 5
    assert abs(body["monthly_bandwidth"] - 1.5) < 1e-6 and abs(body["total_bandwidth"] - 1.5) < 1e-6
    assert client.post("/api/sub/deactivate/", data={"username": username}).status_code == 200
    assert client.get("/api/sub/get/", params={"username": username}).json()["active"] is False
    assert client.post("/api/sub/delete/", data={"username": username}).status_code == 200
    assert client.get("/api/sub/get/", params={"username": username}).status_code == 404
    # Names no account can have are looked up as given: a miss, not a database error.
    for impossible in ("x" * 300, "pm_ä", "a'b; --", "pm_%", "pm__"):
        response = client.get("/api/sub/get/", params={"username": impossible})
        assert response.status_code == 404, (impossible, response.text)
