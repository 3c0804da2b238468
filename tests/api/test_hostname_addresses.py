"""Adding an authenticated hostname checks where it resolves now (issue 12): a name for
loopback, private or other non-public addresses is refused unless the operator allows
those networks, and so is a name resolving to another account's authenticated IP."""

from __future__ import annotations

import httpx

from .harness import Running, StartServer, fresh_source


def test_a_hostname_resolving_to_loopback_is_refused(client: httpx.Client) -> None:
    response = client.post("/api/hostname/add/", data={"domain": "localhost"})
    assert response.status_code == 400
    (message,) = response.json()["domain"]
    assert "127.0.0.1" in message and "loopback" in message
    assert client.get("/api/hostnames/").json() == {"domains": []}


def test_allowed_networks_and_addresses_of_another_account(start_server: StartServer) -> None:
    api: Running = start_server(proxy={"allow_hostname_networks": ["127.0.0.0/8", "::1/128"]})
    owner = api.parent().client(source=fresh_source())
    other = api.parent().client(source=fresh_source())
    assert owner.post("/api/ip/add/", data={"ip": "127.0.0.1"}).status_code == 200
    response = other.post("/api/hostname/add/", data={"domain": "localhost"})
    assert response.status_code == 400
    assert "another account" in response.json()["domain"][0]
    # The IP's own account may add it; once the IP is gone, so may anyone.
    assert owner.post("/api/hostname/add/", data={"domain": "localhost"}).status_code == 200
    assert owner.post("/api/hostname/delete/", data={"domain": "localhost"}).status_code == 204
    assert owner.post("/api/ip/delete/", data={"ip": "127.0.0.1"}).status_code == 204
    response = other.post("/api/hostname/add/", data={"domain": "localhost"})
    assert response.status_code == 200, response.text
