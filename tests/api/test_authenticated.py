"""Authenticated IPs and hostnames: add, delete, list; for the parent or a sub-account."""

from __future__ import annotations

import itertools

import httpx
import pytest

from meshproxy.domain.forms import NOT_UTF8

from .harness import Parent, Running, fresh_source, unique

_octets = itertools.count(1)


def fresh_ip() -> str:
    """A documentation-range IPv4 address no other test uses."""
    n = next(_octets)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def fresh_domain() -> str:
    return unique("host") + ".example.org"


def test_ip_add_list_delete(client: httpx.Client) -> None:
    assert client.get("/api/ips/").json() == {"ips": []}
    first, second = fresh_ip(), fresh_ip()
    response = client.post("/api/ip/add/", data={"ip": first})
    assert response.status_code == 200
    assert response.json() == {"ip": first}
    assert client.post("/api/ip/add/", data={"ip": second}).status_code == 200
    response = client.get("/api/ips/")
    assert response.status_code == 200
    assert response.json() == {"ips": [first, second]}
    response = client.post("/api/ip/delete/", data={"ip": first})
    assert response.status_code == 204
    assert response.content == b""
    assert client.get("/api/ips/").json() == {"ips": [second]}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:db8:0000::00ab", "2001:db8::ab"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (" 203.0.113.10 ", "203.0.113.10"),
    ],
)
def test_ips_are_normalised(client: httpx.Client, given: str, stored: str) -> None:
    response = client.post("/api/ip/add/", data={"ip": given})
    assert response.status_code == 200
    assert response.json() == {"ip": stored}
    assert client.get("/api/ips/").json() == {"ips": [stored]}
    # Another spelling of the same address is the same address.
    assert client.post("/api/ip/add/", data={"ip": stored}).status_code == 400
    assert client.post("/api/ip/delete/", data={"ip": given}).status_code == 204


@pytest.mark.parametrize(
    "bad",
    ["256.1.1.1", "1.2.3", "1.2.3.4.5", "example.com", "1.2.3.4/24", "2001:db8::g", "::1::2", "-1"],
)
def test_invalid_ips(client: httpx.Client, bad: str) -> None:
    response = client.post("/api/ip/add/", data={"ip": bad})
    assert response.status_code == 400
    assert response.json() == {"ip": ["Enter a valid IPv4 or IPv6 address."]}


def test_ip_required(client: httpx.Client) -> None:
    for path in ("/api/ip/add/", "/api/ip/delete/"):
        response = client.post(path, data={})
        assert response.status_code == 400
        assert response.json() == {"ip": ["This field is required."]}


def test_ips_are_globally_unique(api: Running, client: httpx.Client, parent: Parent) -> None:
    ip = fresh_ip()
    assert client.post("/api/ip/add/", data={"ip": ip}).status_code == 200
    # Again on the same account, on its sub-account, and on another parent: all 400.
    response = client.post("/api/ip/add/", data={"ip": ip})
    assert response.status_code == 400
    assert response.json() == {"ip": ["This IP address is already authenticated."]}
    sub = parent.create_sub(client)
    assert client.post("/api/ip/add/", data={"ip": ip, "username": sub}).status_code == 400
    other = api.parent().client(source=fresh_source())
    assert other.post("/api/ip/add/", data={"ip": ip}).status_code == 400
    # Another parent cannot delete it either: it is not theirs.
    response = other.post("/api/ip/delete/", data={"ip": ip})
    assert response.status_code == 400
    assert response.json() == {"ip": ["This IP address is not authenticated."]}
    assert client.get("/api/ips/").json() == {"ips": [ip]}


def test_delete_an_ip_not_authenticated(client: httpx.Client) -> None:
    response = client.post("/api/ip/delete/", data={"ip": fresh_ip()})
    assert response.status_code == 400
    assert response.json() == {"ip": ["This IP address is not authenticated."]}


def test_ips_of_a_sub_account(client: httpx.Client, parent: Parent) -> None:
    sub = parent.create_sub(client)
    ip = fresh_ip()
    response = client.post("/api/ip/add/", data={"ip": ip, "username": sub})
    assert response.status_code == 200 and response.json() == {"ip": ip}
    assert client.get("/api/ips/", params={"username": sub}).json() == {"ips": [ip]}
    assert client.get("/api/ips/").json() == {"ips": []}
    # Deleting from the parent's own list does not touch the sub-account's.
    assert client.post("/api/ip/delete/", data={"ip": ip}).status_code == 400
    assert client.post("/api/ip/delete/", data={"ip": ip, "username": sub}).status_code == 204
    assert client.get("/api/ips/", params={"username": sub}).json() == {"ips": []}


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "/api/ip/add/", {"ip": "192.0.2.1"}),
        ("POST", "/api/ip/delete/", {"ip": "192.0.2.1"}),
        ("GET", "/api/ips/", {}),
        ("POST", "/api/hostname/add/", {"domain": "x.example.com"}),
        ("POST", "/api/hostname/delete/", {"domain": "x.example.com"}),
        ("GET", "/api/hostnames/", {}),
    ],
)
def test_username_must_be_an_own_sub_account(
    api: Running, client: httpx.Client, parent: Parent, method: str, path: str, data: dict[str, str]
) -> None:
    def call(username: str) -> httpx.Response:
        fields = {**data, "username": username}
        if method == "GET":
            return client.get(path, params=fields)
        return client.post(path, data=fields)

    other = api.parent()
    other_sub = other.create_sub(other.client(source=fresh_source()))
    assert call(other_sub).status_code == 403
    assert call(other.username).status_code == 403
    assert call(parent.username).status_code == 403  # a parent is not a sub-account
    response = call(unique("pm_ghost"))
    assert response.status_code == 404
    assert "error" in response.json()
    # A name no account can have names no account: the spec's 404, as for a ghost.
    for impossible in ("bad name!", "x" * 31):
        response = call(impossible)
        assert response.status_code == 404
        assert response.json() == {"error": "Sub-account not found."}
    # Bytes that are not UTF-8 are a form error on the field that carries them.
    if method == "GET":
        response = client.get(f"{path}?username=%FF%FEpm")  # GET ones take no other field
    else:
        body = "&".join(f"{key}={value}" for key, value in data.items())
        response = client.post(
            path,
            content=f"{body}&username=%FF%FEpm".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400
    assert response.json() == {"username": [NOT_UTF8]}


def test_hostname_add_list_delete(client: httpx.Client) -> None:
    assert client.get("/api/hostnames/").json() == {"domains": []}
    domain = fresh_domain()
    response = client.post("/api/hostname/add/", data={"domain": domain})
    assert response.status_code == 200
    assert response.json() == {"domain": domain}
    assert client.get("/api/hostnames/").json() == {"domains": [domain]}
    response = client.post("/api/hostname/delete/", data={"domain": domain})
    assert response.status_code == 204 and response.content == b""
    assert client.get("/api/hostnames/").json() == {"domains": []}


def test_hostnames_are_normalised_and_globally_unique(api: Running, client: httpx.Client) -> None:
    name = fresh_domain()
    response = client.post("/api/hostname/add/", data={"domain": name.upper() + "."})
    assert response.json() == {"domain": name}
    response = client.post("/api/hostname/add/", data={"domain": name})
    assert response.status_code == 400
    assert response.json() == {"domain": ["This hostname is already authenticated."]}
    other = api.parent().client(source=fresh_source())
    assert other.post("/api/hostname/add/", data={"domain": name}).status_code == 400
    response = other.post("/api/hostname/delete/", data={"domain": name})
    assert response.status_code == 400
    assert response.json() == {"domain": ["This hostname is not authenticated."]}


@pytest.mark.parametrize(
    "bad",
    [
        "-leading.example.com",
        "trailing-.example.com",
        "under_score.example.com",
        "a..b.example.com",
        "spa ce.example.com",
        "192.0.2.1",
        "x" * 64 + ".example.com",
        ".".join(["a" * 63] * 4) + ".com",  # 256 characters
        "http://example.com",
    ],
)
def test_invalid_hostnames(client: httpx.Client, bad: str) -> None:
    response = client.post("/api/hostname/add/", data={"domain": bad})
    assert response.status_code == 400
    assert list(response.json()) == ["domain"]


def test_hostname_limits_accepted(client: httpx.Client) -> None:
    label = unique("h")
    longest = ".".join([label + "a" * (63 - len(label))] + ["b" * 63] * 3)[:253].rstrip(".")
    response = client.post("/api/hostname/add/", data={"domain": longest})
    assert response.status_code == 200, response.text
    single = unique("intranet")
    assert client.post("/api/hostname/add/", data={"domain": single}).status_code == 200


def test_hostname_required(client: httpx.Client) -> None:
    for path in ("/api/hostname/add/", "/api/hostname/delete/"):
        assert client.post(path, data={}).json() == {"domain": ["This field is required."]}


def test_hostnames_of_a_sub_account(client: httpx.Client, parent: Parent) -> None:
    sub = parent.create_sub(client)
    domain = fresh_domain()
    response = client.post("/api/hostname/add/", data={"domain": domain, "username": sub})
    assert response.json() == {"domain": domain}
    assert client.get("/api/hostnames/", params={"username": sub}).json() == {"domains": [domain]}
    assert client.get("/api/hostnames/").json() == {"domains": []}
    response = client.post("/api/hostname/delete/", data={"domain": domain, "username": sub})
    assert response.status_code == 204
