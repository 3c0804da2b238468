"""HTTP-level behaviour: authentication, 403 for sub-accounts, 405, 308, 404, 302, 500, 503,
and how parameters are read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from meshproxy.api.endpoints import ENDPOINTS, Endpoint
from meshproxy.domain.forms import NOT_UTF8
from meshproxy.store import Store
from meshproxy.store.access import AccessLists
from meshproxy.store.engine import make_engine
from meshproxy.store.transaction import Database

from .harness import PASSWORD, Parent, Running, StartServer, fresh_source, unique

SAMPLE_DATA: dict[str, dict[str, str]] = {
    "/api/sub/create/": {"username": "pm_sample"},
    "/api/sub/edit/": {"username": "pm_sample"},
    "/api/sub/get/": {"username": "pm_sample"},
    "/api/sub/deactivate/": {"username": "pm_sample"},
    "/api/sub/activate/": {"username": "pm_sample"},
    "/api/sub/delete/": {"username": "pm_sample"},
    "/api/ip/add/": {"ip": "192.0.2.200"},
    "/api/ip/delete/": {"ip": "192.0.2.200"},
    "/api/hostname/add/": {"domain": "sample.example.com"},
    "/api/hostname/delete/": {"domain": "sample.example.com"},
    "/api/proxy/add/": {"proxy": "plain"},
    "/api/proxy/delete/": {"proxy": "plain"},
}


def _path(endpoint: Endpoint) -> str:
    return endpoint.path.replace("{name}", "open")


def call(client: httpx.Client, endpoint: Endpoint, **kwargs: Any) -> httpx.Response:
    data = SAMPLE_DATA.get(endpoint.path, {})
    if endpoint.method == "GET":
        return client.get(_path(endpoint), params=data, **kwargs)
    return client.post(_path(endpoint), data=data, **kwargs)


ALL = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.path for e in ENDPOINTS])


def test_every_spec_path_is_served() -> None:
    served = {(e.method, _path(e)) for e in ENDPOINTS}
    spec = {
        ("POST", "/api/sub/create/"),
        ("POST", "/api/sub/edit/"),
        ("GET", "/api/sub/get/"),
        ("POST", "/api/sub/deactivate/"),
        ("POST", "/api/sub/activate/"),
        ("POST", "/api/sub/delete/"),
        ("POST", "/api/ip/add/"),
        ("POST", "/api/ip/delete/"),
        ("GET", "/api/ips/"),
        ("POST", "/api/hostname/add/"),
        ("POST", "/api/hostname/delete/"),
        ("GET", "/api/hostnames/"),
        ("GET", "/api/proxies/"),
        ("POST", "/api/proxy/add/"),
        ("POST", "/api/proxy/delete/"),
        ("GET", "/api/geoips/open/"),
    }
    assert spec <= served
    assert ("GET", "/api/geoips/world/") not in served  # one route serves every geo proxy


@pytest.fixture(scope="module")
def sub_account(api: Running) -> tuple[str, str]:
    owner = api.parent()
    username = unique("pm_subcreds")
    response = owner.client().post(
        "/api/sub/create/", data={"username": username, "password": "sub-password"}
    )
    assert response.status_code == 200
    return username, "sub-password"


@ALL
def test_sub_account_credentials_get_403_everywhere(
    api: Running, sub_account: tuple[str, str], endpoint: Endpoint
) -> None:
    response = call(api.client(auth=sub_account, source=fresh_source()), endpoint)
    assert response.status_code == 403
    assert "error" in response.json()


@ALL
def test_no_credentials_get_401_everywhere(api: Running, endpoint: Endpoint) -> None:
    response = call(api.client(source=fresh_source()), endpoint)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="')
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + httpx.BasicAuth("nobody-here", PASSWORD)._auth_header.split(" ")[1],
        "Basic !!!not-base64!!!",
        "Basic " + "bm9jb2xvbg==",  # "nocolon"
        "Bearer abc",
        "Basic",
    ],
)
def test_bad_credentials_get_401(api: Running, authorization: str) -> None:
    client = api.client(source=fresh_source())
    response = client.get("/api/ips/", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="')
    assert "error" in response.json()


def test_wrong_password_gets_401(api: Running, parent: Parent) -> None:
    client = api.client(auth=(parent.username, "wrong"), source=fresh_source())
    response = client.get("/api/ips/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="')


def test_account_without_password_cannot_authenticate(api: Running) -> None:
    username = unique("nopass")
    api.store.accounts.create(username, plan="default", billing_day=1)
    client = api.client(auth=(username, ""), source=fresh_source())
    assert client.get("/api/ips/").status_code == 401


def test_deactivated_parent_gets_403(api: Running, parent: Parent) -> None:
    api.store.accounts.update(parent.username, active=False)
    response = parent.client(source=fresh_source()).get("/api/ips/")
    assert response.status_code == 403
    assert "error" in response.json()


@ALL
def test_wrong_method_is_405_with_allow(api: Running, parent: Parent, endpoint: Endpoint) -> None:
    client = parent.client(source=fresh_source())
    wrong = "POST" if endpoint.method == "GET" else "GET"
    for method in (wrong, "PUT", "DELETE"):
        response = client.request(method, _path(endpoint))
        assert response.status_code == 405
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert endpoint.method in allowed and method not in allowed
        assert "error" in response.json()


def test_405_comes_before_authentication(api: Running) -> None:
    response = api.client(source=fresh_source()).get("/api/sub/create/")
    assert response.status_code == 405


@pytest.mark.parametrize("path", ["/api/ips", "/api/sub/get", "/api/geoips/open"])
def test_missing_trailing_slash_redirects_with_308(client: httpx.Client, path: str) -> None:
    response = client.get(path, params={"username": "x"})
    assert response.status_code == 308
    assert response.headers["location"] == path + "/?username=x"
    assert "error" in response.json()


def test_308_preserves_a_post_body(client: httpx.Client) -> None:
    username = unique("pm_slash")
    response = client.post("/api/sub/create", data={"username": username}, follow_redirects=True)
    assert response.status_code == 200
    assert response.json()["username"] == username


def test_unknown_path_is_404_json(client: httpx.Client) -> None:
    response = client.get("/api/nothing/here/")
    assert response.status_code == 404
    assert "error" in response.json()


def test_post_parameters_come_from_the_body_only(client: httpx.Client) -> None:
    response = client.post("/api/sub/create/", params={"username": unique("pm_q")})
    assert response.status_code == 400
    assert response.json() == {"username": ["This field is required."]}


def test_multipart_form_is_accepted(client: httpx.Client) -> None:
    username = unique("pm_multi")
    response = client.post(
        "/api/sub/create/",
        files={"username": (None, username), "first_name": (None, "Multi")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Multi"


def test_a_json_body_is_a_form_error(client: httpx.Client) -> None:
    response = client.post("/api/sub/create/", json={"username": "pm_json"})
    assert response.status_code == 400
    assert list(response.json()) == ["__all__"]


@pytest.mark.parametrize(
    "body", [b"username=%ff%fepm", b"username=\xff\xfepm", b"email=a%40b.c&username=%FF%FEpm"]
)
def test_a_value_that_is_not_utf8_is_400_on_its_field(client: httpx.Client, body: bytes) -> None:
    response = client.post(
        "/api/sub/create/",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json() == {"username": [NOT_UTF8]}


def test_oversized_body_is_413_json(client: httpx.Client) -> None:
    response = client.post("/api/sub/create/", data={"username": "x", "pad": "p" * 70_000})
    assert response.status_code == 413
    assert "error" in response.json()


def test_null_characters_are_rejected(client: httpx.Client) -> None:
    response = client.post("/api/sub/create/", data={"username": "pm_nul\x00"})
    assert response.status_code == 400
    assert list(response.json()) == ["username"]


# ---- 302 to https --------------------------------------------------------------------


def test_plain_http_gets_302_to_the_same_path_on_https(api: Running, parent: Parent) -> None:
    http = parent.client(https=False, source=fresh_source())
    response = http.get("/api/sub/get/", params={"username": "pm_x y"})
    assert response.status_code == 302
    expected = f"https://127.0.0.1:{api.ports.https}/api/sub/get/?username=pm_x+y"
    assert response.headers["location"] == expected
    assert response.json()["location"] == expected
    # A POST too, and before authentication (wrong credentials are not even looked at).
    bad = api.client(auth=("x", "y"), https=False, source=fresh_source())
    response = bad.post("/api/sub/create/", data={"username": "pm_z"})
    assert response.status_code == 302
    assert response.headers["location"] == f"https://127.0.0.1:{api.ports.https}/api/sub/create/"


def test_x_forwarded_proto_from_a_trusted_front_proxy(start_server: StartServer) -> None:
    server = start_server(api={"trusted_proxies": ["127.0.0.1/32"]})
    parent = server.parent()
    trusted = parent.client(https=False, source="127.0.0.1")
    assert trusted.get("/api/ips/", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    assert trusted.get("/api/ips/").status_code == 302
    secure = parent.client(source="127.0.0.1")
    assert secure.get("/api/ips/", headers={"X-Forwarded-Proto": "http"}).status_code == 302
    untrusted = parent.client(https=False, source=fresh_source())
    response = untrusted.get("/api/ips/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 302


def test_public_url_is_the_redirect_target(start_server: StartServer) -> None:
    server = start_server(api={"public_url": "https://api.example.test"})
    response = server.client(https=False).get("/api/ips/", params={"a": "1"})
    assert response.status_code == 302
    assert response.headers["location"] == "https://api.example.test/api/ips/?a=1"


def test_without_require_https_plain_http_is_served(start_server: StartServer) -> None:
    server = start_server(api={"require_https": False})
    parent = server.parent()
    assert parent.client(https=False).get("/api/ips/").json() == {"ips": []}


# ---- 500 and 503 ---------------------------------------------------------------------


class _BrokenAccessLists(AccessLists):
    def list_ips(self, account: Any) -> list[str]:
        raise RuntimeError("secret-internal-detail /etc/meshproxy")


def test_500_is_json_without_a_trace(start_server: StartServer, sqlite_url: str) -> None:
    broken = Store.open(sqlite_url)
    broken.access = _BrokenAccessLists(Database(broken.engine))
    server = start_server(store=broken)
    response = server.parent().client().get("/api/ips/")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert list(response.json()) == ["error"]
    for leak in ("secret", "Traceback", "RuntimeError", "/etc/", ".py"):
        assert leak not in response.text


def test_503_when_the_plan_is_unknown(api: Running) -> None:
    orphan = api.parent(plan="default")
    api.store.accounts.update(orphan.username, plan="discontinued")
    client = orphan.client(source=fresh_source())
    for path, data in (
        ("/api/sub/create/", {"username": unique("pm_noplan")}),
        ("/api/proxy/add/", {"proxy": "plain"}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert "error" in response.json()
    # What does not need the plan still works.
    assert client.get("/api/ips/").status_code == 200


def test_503_when_the_store_is_unreachable(start_server: StartServer) -> None:
    unreachable = Store(make_engine("postgresql://nobody@127.0.0.1:1/none"))
    server = start_server(store=unreachable)
    response = server.client(auth=("someone", "pw")).get("/api/ips/")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "error" in response.json()


async def _dashboard_page(request: Request) -> PlainTextResponse:
    return PlainTextResponse("dashboard " + request.url.path)


def test_mounted_routes_come_after_the_api(start_server: StartServer) -> None:
    dashboard = Mount("/", routes=[Route("/{path:path}", _dashboard_page)])
    server = start_server(mounts=[dashboard])
    client = server.client(source=fresh_source())
    assert client.get("/login/").text == "dashboard /login/"
    assert client.get("/api").text == "dashboard /api"
    response = client.get("/api/unknown/")
    assert response.status_code == 404 and "error" in response.json()
    assert client.get("/api/ips/").status_code == 401
    assert client.get("/api/sub/create/").status_code == 405
    # The 302 to https covers the mounted pages too.
    assert server.client(https=False).get("/login/").status_code == 302
