"""Cross-tenant attempts on every API endpoint (ENDPOINTS), against a real API server:
parent A naming B's sub-accounts or B itself, A naming B's IPs and hostnames by value, and
sub-account credentials (acting on themselves, a sibling, another parent's sub-account).
Each is refused (403, or 400 where the name is merely taken), and afterwards both tenants'
accounts, IPs, hostnames and proxies are exactly as before."""

from __future__ import annotations

import httpx
import pytest

from api.harness import Running, fresh_source, unique
from meshproxy.api.endpoints import ENDPOINTS, Endpoint

from .tenancy import Tenants, populate, snapshot

SUB_PASSWORD = "sub-account password"
ALL = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.path for e in ENDPOINTS])
# Values that would change something if the target were wrongly accepted.
CHANGES = {"first_name": "pwned", "last_name": "pwned", "email": "pwned@example.com",
           "password": "pwned", "monthly_limit": "1", "total_limit": "1"}


@pytest.fixture(scope="module")
def tenants(api: Running) -> Tenants:
    a, b = api.parent(prefix="tenant_a"), api.parent(prefix="tenant_b")
    a_client, b_client = a.client(source=fresh_source()), b.client(source=fresh_source())
    names = [unique("pm_a"), unique("pm_b"), unique("pm_boff")]
    a.create_sub(a_client, username=names[0], password=SUB_PASSWORD)
    for name in names[1:]:
        b.create_sub(b_client, username=name, password=SUB_PASSWORD, first_name="Bea",
                     monthly_limit="5")
    world = Tenants(a=a.username, a_sub=names[0], b=b.username, b_sub=names[1],
                    b_off=names[2], b_sub_ip="198.51.100.21", b_sub_host="b-sub.example.com",
                    b_off_ip="198.51.100.22", b_ip="198.51.100.23", b_host="b.example.com")
    populate(api.store, world)
    return world


def _path(endpoint: Endpoint) -> str:
    return endpoint.path.replace("{name}", "open")


def _call(client: httpx.Client, endpoint: Endpoint, data: dict[str, str]) -> httpx.Response:
    if endpoint.method == "GET":
        return client.get(_path(endpoint), params=data)
    return client.post(_path(endpoint), data=data)


def _value_fields(endpoint: Endpoint, world: Tenants, foreign: bool) -> dict[str, str]:
    """The endpoint's own fields: B's values (foreign) where deleting or adding them would
    hurt B, else harmless fresh ones."""
    path = endpoint.path
    if path.startswith("/api/ip/"):
        return {"ip": world.b_sub_ip if foreign else "203.0.113.99"}
    if path.startswith("/api/hostname/"):
        return {"domain": world.b_sub_host if foreign else "fresh.example.org"}
    if path == "/api/proxy/add/":
        return {"proxy": "open"}  # already authorized: no change either way
    if path == "/api/proxy/delete/":
        return {"proxy": "plain"}  # never authorized: no change either way
    if path == "/api/sub/edit/":
        return dict(CHANGES)
    return {}


def _has_username(endpoint: Endpoint) -> bool:
    return endpoint.form is not None and "username" in endpoint.form.fields


@ALL
def test_parent_a_cannot_act_on_b_or_bs_sub_accounts(
    api: Running, tenants: Tenants, endpoint: Endpoint
) -> None:
    a = api.client(auth=(tenants.a, "correct horse battery staple"), source=fresh_source())
    before = snapshot(api.store, tenants)
    for target in (tenants.b_sub, tenants.b_off, tenants.b):
        data = {**_value_fields(endpoint, tenants, foreign=True), "username": target}
        response = _call(a, endpoint, data)
        if endpoint.path == "/api/sub/create/":
            assert response.status_code == 400, response.text  # the name is taken, by anyone
            assert "username" in response.json()
        elif _has_username(endpoint):
            assert response.status_code == 403, (target, response.text)
            assert "error" in response.json()
        else:  # no such parameter: it is ignored, and A acts on its own account only
            assert response.status_code < 500
            assert target not in response.text
        assert snapshot(api.store, tenants) == before, (endpoint.path, target)


@pytest.mark.parametrize("path", ["/api/ip/delete/", "/api/hostname/delete/", "/api/ip/add/",
                                  "/api/hostname/add/"])
def test_parent_a_cannot_take_or_remove_bs_addresses_by_value(
    api: Running, tenants: Tenants, path: str
) -> None:
    """Without a username A acts on itself: B's IPs and hostnames are neither removed
    (400: not A's) nor taken over (400: globally unique)."""
    a = api.client(auth=(tenants.a, "correct horse battery staple"), source=fresh_source())
    before = snapshot(api.store, tenants)
    field = "ip" if "/ip/" in path else "domain"
    for value in ((tenants.b_sub_ip, tenants.b_ip, tenants.b_off_ip) if field == "ip"
                  else (tenants.b_sub_host, tenants.b_host, tenants.b_host.upper() + ".")):
        response = a.post(path, data={field: value})
        assert response.status_code == 400, (value, response.text)
        assert list(response.json()) == [field]
        assert snapshot(api.store, tenants) == before


@ALL
def test_sub_account_credentials_are_refused_whatever_the_target(
    api: Running, tenants: Tenants, endpoint: Endpoint
) -> None:
    before = snapshot(api.store, tenants)
    for actor, target in ((tenants.b_sub, tenants.b_sub), (tenants.b_sub, tenants.b_off),
                          (tenants.b_sub, tenants.b), (tenants.a_sub, tenants.b_sub),
                          (tenants.b_off, tenants.b_off)):
        client = api.client(auth=(actor, SUB_PASSWORD), source=fresh_source())
        fields = _value_fields(endpoint, tenants, foreign=True)
        for data in (fields, {**fields, "username": target}):
            if endpoint.path == "/api/sub/create/":
                data = {**data, "username": unique("pm_bysub")}
            response = _call(client, endpoint, data)
            assert response.status_code == 403, (actor, target, response.text)
            assert "error" in response.json()
            assert target not in response.text or target == actor
    assert snapshot(api.store, tenants) == before


def test_lists_never_show_another_tenant(api: Running, tenants: Tenants) -> None:
    a = api.client(auth=(tenants.a, "correct horse battery staple"), source=fresh_source())
    listing = a.get("/api/sub/list/", params={"limit": "1000"})
    assert listing.status_code == 200
    for name in (tenants.b_sub, tenants.b_off, tenants.b):
        assert name not in listing.text
    assert tenants.a_sub in listing.text
    for path in ("/api/ips/", "/api/hostnames/"):
        own = a.get(path)
        assert own.status_code == 200
        assert tenants.b_sub_ip not in own.text and tenants.b_sub_host not in own.text
