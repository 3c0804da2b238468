"""Authorized proxies and geo IPs."""

from __future__ import annotations

import httpx
import pytest

from .harness import Running, fresh_source, post_at_once


def test_list_authorized_proxies(client: httpx.Client) -> None:
    response = client.get("/api/proxies/")
    assert response.status_code == 200
    assert response.json() == {
        "proxies": ["open.proxymesh.test:31280", "world.proxymesh.test:31281"]
    }


PLAIN = ("plain.proxymesh.test", "plain.proxymesh.test:31282")
EXTRA = ("extra.example.net", "extra.example.net:31283")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain", PLAIN),
        ("plain.proxymesh.test", PLAIN),
        ("plain.proxymesh.test:31282", PLAIN),
        ("PLAIN.ProxyMesh.Test", PLAIN),
        ("extra", EXTRA),
        ("extra.example.net:31283", EXTRA),
    ],
)
def test_add_proxy_by_any_name(client: httpx.Client, name: str, expected: tuple[str, str]) -> None:
    domain, address = expected
    response = client.post("/api/proxy/add/", data={"proxy": name})
    assert response.status_code == 200
    assert response.json() == {"proxy": domain}
    assert address in client.get("/api/proxies/").json()["proxies"]


def test_adding_twice_changes_nothing(client: httpx.Client) -> None:
    before = client.get("/api/proxies/").json()
    response = client.post("/api/proxy/add/", data={"proxy": "open"})
    assert response.status_code == 200
    assert response.json() == {"proxy": "open.proxymesh.test"}
    assert client.get("/api/proxies/").json() == before


@pytest.mark.parametrize(
    "name",
    ["nope", "open.elsewhere.test", "open.proxymesh.test:9999", "open:31281", "http://open"],
)
def test_unknown_proxy_is_400(client: httpx.Client, name: str) -> None:
    for path in ("/api/proxy/add/", "/api/proxy/delete/"):
        response = client.post(path, data={"proxy": name})
        assert response.status_code == 400
        assert response.json() == {"proxy": ["Unknown proxy."]}


def test_proxy_required(client: httpx.Client) -> None:
    for path in ("/api/proxy/add/", "/api/proxy/delete/"):
        assert client.post(path, data={}).json() == {"proxy": ["This field is required."]}


def test_delete_proxy(client: httpx.Client) -> None:
    response = client.post("/api/proxy/delete/", data={"proxy": "world.proxymesh.test:31281"})
    assert response.status_code == 204
    assert response.content == b""
    assert client.get("/api/proxies/").json() == {"proxies": ["open.proxymesh.test:31280"]}
    # Deleting one not authorized changes nothing.
    assert client.post("/api/proxy/delete/", data={"proxy": "world"}).status_code == 204
    assert client.get("/api/proxies/").json() == {"proxies": ["open.proxymesh.test:31280"]}


TINY_FULL = {"error": "Your plan allows 2 proxies. Upgrade your plan to add more."}


def test_402_over_the_plans_proxy_count(api: Running) -> None:
    tiny = api.parent(plan="tiny")  # max 2 proxies, has open
    client = tiny.client(source=fresh_source())
    assert client.post("/api/proxy/add/", data={"proxy": "world"}).status_code == 200
    response = client.post("/api/proxy/add/", data={"proxy": "plain"})
    assert response.status_code == 402
    assert response.json() == TINY_FULL
    # Re-adding one it has is not "more".
    assert client.post("/api/proxy/add/", data={"proxy": "open"}).status_code == 200
    assert client.post("/api/proxy/delete/", data={"proxy": "open"}).status_code == 204
    assert client.post("/api/proxy/add/", data={"proxy": "plain"}).status_code == 200
    assert client.get("/api/proxies/").json() == {
        "proxies": ["world.proxymesh.test:31281", "plain.proxymesh.test:31282"]
    }


def test_adds_racing_at_the_limit_end_with_the_plans_count(api: Running) -> None:
    tiny = api.parent(plan="tiny")  # max 2 proxies, has open: one more fits
    source = fresh_source()
    forms = [{"proxy": name} for name in ("world", "plain", "extra")]
    responses = post_at_once(lambda: tiny.client(source=source), "/api/proxy/add/", forms)
    assert sorted(response.status_code for response in responses) == [200, 402, 402]
    assert all(r.json() == TINY_FULL for r in responses if r.status_code == 402)
    assert len(tiny.client(source=source).get("/api/proxies/").json()["proxies"]) == 2


def test_geoips(client: httpx.Client) -> None:
    response = client.get("/api/geoips/open/")
    assert response.status_code == 200
    assert response.json() == {"DE": 1, "US": 2}  # the address without a country is not counted
    assert client.get("/api/geoips/world/").json() == {"GB": 1}


@pytest.mark.parametrize("path", ["/api/geoips/plain/", "/api/geoips/nope/"])
def test_geoips_of_a_non_geo_or_unknown_proxy_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "error" in response.json()
