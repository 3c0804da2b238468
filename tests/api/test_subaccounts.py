"""Sub-account endpoints over HTTP: create, edit, get, deactivate, activate, delete, list."""

from __future__ import annotations

import httpx
import pytest

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.forms import NOT_UTF8
from meshproxy.domain.passwords import verify_password
from meshproxy.domain.units import GB

from .harness import Parent, Running, fresh_source, post_at_once, unique

DETAIL_KEYS = {
    "username",
    "active",
    "monthly_bandwidth",
    "monthly_bandwidth_limit",
    "total_bandwidth",
    "total_bandwidth_limit",
}
REQUIRED = ["This field is required."]


def test_create_minimal_answers_details_without_optional_fields(client: httpx.Client) -> None:
    response = client.post("/api/sub/create/", data={"username": "pm_minimal" + unique("")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == DETAIL_KEYS
    assert body["active"] is True
    assert body["monthly_bandwidth"] == 0.0 and isinstance(body["monthly_bandwidth"], float)
    assert body["total_bandwidth"] == 0.0 and isinstance(body["total_bandwidth"], float)
    assert body["monthly_bandwidth_limit"] == 0 and isinstance(body["monthly_bandwidth_limit"], int)
    assert body["total_bandwidth_limit"] == 0 and isinstance(body["total_bandwidth_limit"], int)


def test_create_with_every_field(client: httpx.Client, api: Running) -> None:
    username = unique("pm_full.a@b+c-d_")
    response = client.post(
        "/api/sub/create/",
        data={
            "username": username,
            "password": "s3cret",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "monthly_limit": "5",
            "total_limit": "50",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "username": username,
        "active": True,
        "monthly_bandwidth": 0.0,
        "monthly_bandwidth_limit": 5,
        "total_bandwidth": 0.0,
        "total_bandwidth_limit": 50,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    stored = api.store.accounts.get(username)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, "s3cret")


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({}, {"username": REQUIRED}),
        ({"username": ""}, {"username": REQUIRED}),
        (
            {"username": "a" * 31},
            {"username": ["Ensure this value has at most 30 characters (it has 31)."]},
        ),
        ({"username": "pm_bad name"}, None),
        ({"username": "pm_bad/name"}, None),
        ({"username": "pm_bäd"}, None),
        (
            {"password": "p" * 129},
            {"password": ["Ensure this value has at most 128 characters (it has 129)."]},
        ),
        (
            {"first_name": "f" * 21},
            {"first_name": ["Ensure this value has at most 20 characters (it has 21)."]},
        ),
        (
            {"last_name": "l" * 21},
            {"last_name": ["Ensure this value has at most 20 characters (it has 21)."]},
        ),
        (
            {"email": "e" * 244 + "@example.com"},
            {"email": ["Ensure this value has at most 255 characters (it has 256)."]},
        ),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        (
            {"monthly_limit": "-1"},
            {"monthly_limit": ["Ensure this value is greater than or equal to 0."]},
        ),
        ({"monthly_limit": "1.5"}, {"monthly_limit": ["Enter a whole number."]}),
        ({"monthly_limit": "ten"}, {"monthly_limit": ["Enter a whole number."]}),
        (
            {"total_limit": "-5"},
            {"total_limit": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"total_limit": "9" * 30},
            {"total_limit": ["Ensure this value is less than or equal to 1000000000000."]},
        ),
        ({"total_limit": "1e3"}, {"total_limit": ["Enter a whole number."]}),
    ],
)
def test_create_validation(
    client: httpx.Client, fields: dict[str, str], errors: dict[str, list[str]] | None
) -> None:
    data = {"username": unique("pm_v"), **fields}
    if not fields:
        data = {}
    response = client.post("/api/sub/create/", data=data)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if errors is None:
        assert list(body) == ["username"] and body["username"][0].startswith(
            "Enter a valid username"
        )
    else:
        assert body == errors


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"username": "u" * 30}, {"username": "u" * 30}),
        ({"password": "p" * 128}, {}),
        (
            {"first_name": "f" * 20, "last_name": "l" * 20},
            {"first_name": "f" * 20, "last_name": "l" * 20},
        ),
        ({"email": "e" * 243 + "@example.com"}, {"email": "e" * 243 + "@example.com"}),
        ({"monthly_limit": "0", "total_limit": "1000000000000"}, {"total_bandwidth_limit": 10**12}),
    ],
)
def test_create_accepts_values_at_the_limits(
    api: Running, parent: Parent, fields: dict[str, str], expected: dict[str, object]
) -> None:
    client = parent.client(source=fresh_source())
    if "username" in fields:
        api.store.accounts.delete(fields["username"])  # a fixed name: free it first
    data = {"username": unique("pm_edge"), **fields}
    response = client.post("/api/sub/create/", data=data)
    assert response.status_code == 200, response.text
    body = response.json()
    for key, value in expected.items():
        assert body[key] == value


def test_usernames_are_globally_unique(api: Running, client: httpx.Client, parent: Parent) -> None:
    other = api.parent()
    other_sub = other.create_sub(other.client(source=fresh_source()))
    for taken in (other_sub, other.username, parent.username):
        response = client.post("/api/sub/create/", data={"username": taken})
        assert response.status_code == 400
        assert response.json() == {"username": ["A user with that username already exists."]}
    mine = parent.create_sub(client)
    assert client.post("/api/sub/create/", data={"username": mine}).status_code == 400


def test_usernames_are_case_sensitive(client: httpx.Client) -> None:
    name = unique("pm_Case")
    assert client.post("/api/sub/create/", data={"username": name}).status_code == 200
    assert client.post("/api/sub/create/", data={"username": name.lower()}).status_code == 200


TINY_FULL = {
    "error": "Your plan allows 2 sub-accounts. "
    "Upgrade your plan or delete sub-accounts to add more."
}


def test_402_when_the_plan_allows_no_more_sub_accounts(api: Running) -> None:
    tiny = api.parent(plan="tiny")
    client = tiny.client(source=fresh_source())
    first = tiny.create_sub(client)
    tiny.create_sub(client)
    response = client.post("/api/sub/create/", data={"username": unique("pm_third")})
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/json"
    assert response.json() == TINY_FULL
    # A full plan is told before a taken username.
    taken = client.post("/api/sub/create/", data={"username": first})
    assert (taken.status_code, taken.json()) == (402, TINY_FULL)
    # Deleting one frees a place.
    assert client.post("/api/sub/delete/", data={"username": first}).status_code == 200
    tiny.create_sub(client)


def test_creates_racing_at_the_limit_end_with_the_plans_count(api: Running) -> None:
    tiny = api.parent(plan="tiny")
    source = fresh_source()
    forms = [{"username": unique("pm_race")} for _ in range(8)]
    responses = post_at_once(lambda: tiny.client(source=source), "/api/sub/create/", forms)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 2 + [402] * 6
    assert all(r.json() == TINY_FULL for r in responses if r.status_code == 402)
    assert api.store.accounts.count_sub_accounts(tiny.id) == 2


def test_get_details(api: Running, client: httpx.Client, parent: Parent) -> None:
    username = parent.create_sub(client, first_name="Grace", monthly_limit="3")
    sub = api.store.accounts.get(username)
    assert sub is not None
    day = api.store.usage.of(sub, _now(api))[0]  # 0 bytes yet
    assert day == 0
    api.store.usage.record(
        [UsageDelta(sub.id, parent.id, 1_500_000_000)],
        _now(api).date(),
    )
    response = client.get("/api/sub/get/", params={"username": username})
    assert response.status_code == 200
    assert response.json() == {
        "username": username,
        "active": True,
        "monthly_bandwidth": 1.5,
        "monthly_bandwidth_limit": 3,
        "total_bandwidth": 1.5,
        "total_bandwidth_limit": 0,
        "first_name": "Grace",
    }


def test_monthly_usage_is_the_parents_billing_period(
    api: Running, client: httpx.Client, parent: Parent
) -> None:
    username = parent.create_sub(client)
    sub = api.store.accounts.get(username)
    assert sub is not None
    now = _now(api)
    last_period = now.replace(day=1).date().replace(month=now.month - 1)
    api.store.usage.record([UsageDelta(sub.id, parent.id, 2 * GB)], last_period)
    api.store.usage.record([UsageDelta(sub.id, parent.id, 123_456_789)], now.date())
    body = client.get("/api/sub/get/", params={"username": username}).json()
    assert body["monthly_bandwidth"] == 0.123456789
    assert body["total_bandwidth"] == 2.123456789


def test_usage_is_written_in_fixed_notation(
    api: Running, client: httpx.Client, parent: Parent
) -> None:
    username = parent.create_sub(client)
    sub = api.store.accounts.get(username)
    assert sub is not None
    api.store.usage.record([UsageDelta(sub.id, parent.id, 2432)], _now(api).date())
    for response in (
        client.get("/api/sub/get/", params={"username": username}),
        client.post("/api/sub/deactivate/", data={"username": username}),
        client.get("/api/sub/list/"),
    ):
        assert '"monthly_bandwidth":0.000002432' in response.text, response.text
        assert '"total_bandwidth":0.000002432' in response.text and "e-0" not in response.text


def test_get_requires_username(client: httpx.Client) -> None:
    response = client.get("/api/sub/get/")
    assert response.status_code == 400
    assert response.json() == {"username": REQUIRED}


def test_get_403_and_404(api: Running, client: httpx.Client, parent: Parent) -> None:
    other = api.parent()
    other_sub = other.create_sub(other.client(source=fresh_source()))
    assert client.get("/api/sub/get/", params={"username": other_sub}).status_code == 403
    assert client.get("/api/sub/get/", params={"username": other.username}).status_code == 403
    assert client.get("/api/sub/get/", params={"username": parent.username}).status_code == 403
    response = client.get("/api/sub/get/", params={"username": unique("pm_nobody")})
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.parametrize("impossible", ["x" * 31, "pm_a b", "pm_a!", "pm_a/b", "pm_ä", " pm_a"])
def test_get_a_name_no_account_can_have_is_404(client: httpx.Client, impossible: str) -> None:
    response = client.get("/api/sub/get/", params={"username": impossible})
    assert response.status_code == 404
    assert response.json() == {"error": "Sub-account not found."}


def test_get_a_username_that_is_not_utf8_is_400_on_the_field(client: httpx.Client) -> None:
    response = client.get("/api/sub/get/?username=%FF%FEpm")
    assert response.status_code == 400
    assert response.json() == {"username": [NOT_UTF8]}


def test_create_still_validates_the_new_username(client: httpx.Client) -> None:
    for bad in ("x" * 31, "pm_a b"):
        response = client.post("/api/sub/create/", data={"username": bad})
        assert response.status_code == 400 and list(response.json()) == ["username"]


def test_edit_changes_only_what_is_given(
    api: Running, client: httpx.Client, parent: Parent
) -> None:
    username = parent.create_sub(
        client,
        first_name="Ada",
        last_name="King",
        email="ada@example.com",
        monthly_limit="1",
        total_limit="2",
        password="old-password",
    )
    before = api.store.accounts.get(username)
    response = client.post("/api/sub/edit/", data={"username": username, "monthly_limit": "7"})
    assert response.status_code == 200
    assert response.json() == {
        "username": username,
        "active": True,
        "monthly_bandwidth": 0.0,
        "monthly_bandwidth_limit": 7,
        "total_bandwidth": 0.0,
        "total_bandwidth_limit": 2,
        "first_name": "Ada",
        "last_name": "King",
        "email": "ada@example.com",
    }
    after = api.store.accounts.get(username)
    assert before is not None and after is not None
    assert after.password_hash == before.password_hash


def test_edit_empty_clears_names_and_email(client: httpx.Client, parent: Parent) -> None:
    username = parent.create_sub(client, first_name="Ada", last_name="King", email="a@b.io")
    response = client.post(
        "/api/sub/edit/",
        data={"username": username, "first_name": "", "last_name": "", "email": ""},
    )
    assert response.status_code == 200
    assert set(response.json()) == DETAIL_KEYS


def test_edit_new_password_replaces_the_old(
    api: Running, client: httpx.Client, parent: Parent
) -> None:
    username = parent.create_sub(client, password="old-password")
    # An empty password leaves it unchanged.
    assert (
        client.post("/api/sub/edit/", data={"username": username, "password": ""}).status_code
        == 200
    )
    stored = api.store.accounts.get(username)
    assert stored is not None and stored.password_hash
    assert verify_password(stored.password_hash, "old-password")
    assert (
        client.post(
            "/api/sub/edit/", data={"username": username, "password": "new-password"}
        ).status_code
        == 200
    )
    stored = api.store.accounts.get(username)
    assert stored is not None and stored.password_hash
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, "new-password")
    assert not verify_password(stored.password_hash, "old-password")
    # The sub-account now authenticates with it (and, being a sub-account, gets 403).
    sub_client = api.client(auth=(username, "new-password"), source=fresh_source())
    assert sub_client.get("/api/ips/").status_code == 403


def test_edit_errors(api: Running, client: httpx.Client, parent: Parent) -> None:
    username = parent.create_sub(client)
    assert client.post("/api/sub/edit/", data={}).json() == {"username": REQUIRED}
    response = client.post("/api/sub/edit/", data={"username": username, "total_limit": "-1"})
    assert response.status_code == 400 and list(response.json()) == ["total_limit"]
    other = api.parent()
    other_sub = other.create_sub(other.client(source=fresh_source()))
    assert client.post("/api/sub/edit/", data={"username": other_sub}).status_code == 403
    assert client.post("/api/sub/edit/", data={"username": parent.username}).status_code == 403
    assert client.post("/api/sub/edit/", data={"username": unique("pm_ghost")}).status_code == 404


def test_deactivate_and_activate(api: Running, client: httpx.Client, parent: Parent) -> None:
    username = parent.create_sub(client)
    response = client.post("/api/sub/deactivate/", data={"username": username})
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert set(response.json()) == DETAIL_KEYS
    assert client.get("/api/sub/get/", params={"username": username}).json()["active"] is False
    stored = api.store.accounts.get(username)
    assert stored is not None and not stored.active
    response = client.post("/api/sub/activate/", data={"username": username})
    assert response.status_code == 200 and response.json()["active"] is True
    # Activating an active account is harmless.
    assert client.post("/api/sub/activate/", data={"username": username}).json()["active"] is True


@pytest.mark.parametrize(
    "path", ["/api/sub/edit/", "/api/sub/deactivate/", "/api/sub/activate/", "/api/sub/delete/"]
)
def test_username_endpoints_errors(api: Running, client: httpx.Client, path: str) -> None:
    assert client.post(path, data={}).json() == {"username": REQUIRED}
    # A name no account can have (too long, a disallowed character): the spec's 404.
    for impossible in ("x" * 31, "pm_x y", "pm_é"):
        response = client.post(path, data={"username": impossible})
        assert response.status_code == 404
        assert response.json() == {"error": "Sub-account not found."}
    other = api.parent()
    other_sub = other.create_sub(other.client(source=fresh_source()))
    assert client.post(path, data={"username": other_sub}).status_code == 403
    assert client.post(path, data={"username": unique("pm_ghost")}).status_code == 404
    # The other parent's sub-account is untouched.
    stored = api.store.accounts.get(other_sub)
    assert stored is not None and stored.active


def test_delete_answers_empty_200_and_forgets_everything(
    api: Running, client: httpx.Client, parent: Parent
) -> None:
    username = parent.create_sub(client)
    ip = "192.0.2.77"
    assert client.post("/api/ip/add/", data={"ip": ip, "username": username}).status_code == 200
    response = client.post("/api/sub/delete/", data={"username": username})
    assert response.status_code == 200
    assert response.content == b""
    assert client.get("/api/sub/get/", params={"username": username}).status_code == 404
    assert client.post("/api/sub/delete/", data={"username": username}).status_code == 404
    # Its IP is free again, and the username can be created anew.
    assert client.post("/api/ip/add/", data={"ip": ip}).status_code == 200
    assert client.post("/api/sub/create/", data={"username": username}).status_code == 200


def test_list_sub_accounts_pages(client: httpx.Client, parent: Parent) -> None:
    names = sorted(parent.create_sub(client, username=f"pm_list{i}_{parent.id}") for i in range(5))
    response = client.get("/api/sub/list/", params={"limit": "2", "offset": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 5 and body["offset"] == 1 and body["limit"] == 2
    assert [sub["username"] for sub in body["sub_accounts"]] == names[1:3]
    assert set(body["sub_accounts"][0]) == DETAIL_KEYS
    everything = client.get("/api/sub/list/").json()
    assert [sub["username"] for sub in everything["sub_accounts"]] == names
    assert client.get("/api/sub/list/", params={"limit": "0"}).status_code == 400
    assert client.get("/api/sub/list/", params={"limit": "1001"}).status_code == 400
    assert client.get("/api/sub/list/", params={"offset": "-1"}).status_code == 400


def _now(api: Running):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(api.clock(), UTC)
