"""/api/webhook/add/, /list/ and /delete/ (meshproxy extensions): a parent's webhooks,
never showing a secret; URLs to private or loopback addresses refused unless the operator
allows the network, plain http:// unless allowed; each parent sees only its own."""

from __future__ import annotations

import pytest

from .harness import Running, StartServer, fresh_source

SECRET = "0123456789abcdef-secret"


@pytest.fixture(scope="module")
def allowing(start_server: StartServer) -> Running:
    """A server whose operator allows loopback webhooks over http, two per parent."""
    return start_server(
        alerts={"allow_networks": ["127.0.0.0/8"], "allow_http": True, "max_webhooks": 2}
    )


def test_private_and_plain_http_urls_are_refused_by_default(api: Running) -> None:
    parent = api.parent()
    http = parent.client(source=fresh_source())
    cases = {
        "https://127.0.0.1:9/hook": "resolves to 127.0.0.1, a loopback address",
        "https://[::1]/hook": "resolves to ::1, a loopback address",
        "https://10.1.2.3/hook": "resolves to 10.1.2.3, a private address",
        "https://localhost/hook": "a loopback address",
        "http://203.0.113.9/hook": "Webhook URLs must use https://.",
        "https://user:pw@203.0.113.9/": "holds no credentials",
        "ftp://203.0.113.9/": "Enter a valid http:// or https:// URL.",
        "https://no-such-host.invalid/": "does not resolve",
    }
    for url, message in cases.items():
        answer = http.post("/api/webhook/add/", data={"url": url, "secret": SECRET})
        assert answer.status_code == 400, url
        assert message in " ".join(answer.json()["url"]), (url, answer.json())
    short = http.post("/api/webhook/add/", data={"url": "https://203.0.113.9/", "secret": "x"})
    assert short.status_code == 400 and "secret" in short.json()
    assert http.get("/api/webhook/list/").json() == {"webhooks": []}


def test_add_list_delete(allowing: Running) -> None:
    parent = allowing.parent()
    client = parent.client(source=fresh_source())
    added = client.post(
        "/api/webhook/add/", data={"url": "http://127.0.0.1:9/hook", "secret": SECRET}
    )
    assert added.status_code == 200, added.text
    webhook = added.json()
    assert set(webhook) == {"id", "url", "created"} and webhook["url"] == "http://127.0.0.1:9/hook"
    second = client.post("/api/webhook/add/", data={"url": "http://127.0.0.2/b", "secret": SECRET})
    assert second.status_code == 200
    third = client.post("/api/webhook/add/", data={"url": "http://127.0.0.3/c", "secret": SECRET})
    assert third.status_code == 402  # max_webhooks = 2
    listed = client.get("/api/webhook/list/")
    assert listed.status_code == 200 and SECRET not in listed.text
    assert [w["id"] for w in listed.json()["webhooks"]] == [webhook["id"], second.json()["id"]]

    other = allowing.parent().client(source=fresh_source())
    assert other.get("/api/webhook/list/").json() == {"webhooks": []}
    stolen = other.post("/api/webhook/delete/", data={"id": str(webhook["id"])})
    assert stolen.status_code == 404
    deleted = client.post("/api/webhook/delete/", data={"id": str(webhook["id"])})
    assert deleted.status_code == 204 and deleted.content == b""
    again = client.post("/api/webhook/delete/", data={"id": str(webhook["id"])})
    assert again.status_code == 404
    assert client.post("/api/webhook/delete/", data={"id": "x"}).status_code == 400
    assert [w["id"] for w in client.get("/api/webhook/list/").json()["webhooks"]] == [
        second.json()["id"]
    ]
    entries = allowing.store.audit.entries(owner_id=parent.id)
    assert [e.operation for e in entries] == ["webhook.delete", "webhook.add", "webhook.add"]
    assert entries[-1].fields == {"url": "http://127.0.0.1:9/hook", "secret": "(redacted)"}


def test_sub_accounts_have_no_webhooks(allowing: Running) -> None:
    owner = allowing.parent()
    sub = owner.create_sub(owner.client(source=fresh_source()), password="sub-password-1")
    as_sub = allowing.client(auth=(sub, "sub-password-1"), source=fresh_source())
    answer = as_sub.post("/api/webhook/add/", data={"url": "http://127.0.0.1/", "secret": SECRET})
    assert answer.status_code == 403
    assert as_sub.get("/api/webhook/list/").status_code == 403
