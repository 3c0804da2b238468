"""The audit log of API calls: each change once, with the caller, the target, the fields
sent (never a password) and the client's address; reads and refused calls leave none."""

from __future__ import annotations

from .harness import Parent, Running, fresh_source


def test_api_changes_are_recorded(api: Running, parent: Parent) -> None:
    source = fresh_source()
    client = parent.client(source=source)
    sub = parent.create_sub(client, password="sub-password-1", monthly_limit="5")
    assert client.post("/api/sub/edit/", data={"username": sub, "email": "a@b.example"}).is_success
    assert client.post("/api/ip/add/", data={"ip": "10.9.8.7", "username": sub}).is_success
    assert client.post("/api/ip/add/", data={"ip": "10.9.8.7"}).status_code == 400  # taken
    assert client.post("/api/proxy/add/", data={"proxy": "plain"}).is_success
    assert client.get("/api/sub/get/", params={"username": sub}).is_success
    assert client.get("/api/ips/").is_success
    assert client.post("/api/sub/deactivate/", data={"username": sub}).is_success
    assert client.post("/api/sub/delete/", data={"username": sub}).is_success

    entries = list(reversed(api.store.audit.entries(owner_id=parent.id)))
    assert [(e.operation, e.target) for e in entries] == [
        ("sub.create", sub),
        ("sub.edit", sub),
        ("ip.add", sub),
        ("proxy.add", parent.username),
        ("sub.deactivate", sub),
        ("sub.delete", sub),
    ]
    assert {(e.actor, e.via, e.client, e.owner) for e in entries} == {
        (parent.username, "api", source, parent.username)
    }
    assert entries[0].fields == {"password": "(redacted)", "monthly_limit": "5"}
    assert entries[1].fields == {"email": "a@b.example"}
    assert entries[2].fields == {"ip": "10.9.8.7"}
    assert entries[3].fields == {"proxy": "plain"}


def test_a_sub_account_or_a_stranger_changes_nothing_and_is_not_recorded(
    api: Running, parent: Parent
) -> None:
    client = parent.client(source=fresh_source())
    sub = parent.create_sub(client, password="sub-password-1")
    as_sub = api.client(auth=(sub, "sub-password-1"), source=fresh_source())
    assert as_sub.post("/api/ip/add/", data={"ip": "10.9.8.6"}).status_code == 403
    stranger = api.client(auth=(parent.username, "wrong"), source=fresh_source())
    assert stranger.post("/api/sub/delete/", data={"username": sub}).status_code == 401
    assert [e.operation for e in api.store.audit.entries(owner_id=parent.id)] == ["sub.create"]
