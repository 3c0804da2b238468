"""Every client method against the running API over real HTTPS, with Client and AsyncClient."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshproxy.client import (
    ApiError,
    AsyncClient,
    AuthenticationFailed,
    CertificateNotTrusted,
    Client,
    Forbidden,
    FormError,
    HttpsRequired,
    MethodNotAllowed,
    NetworkError,
    NotFound,
    PaymentRequired,
    PlanUnavailable,
    RetryPolicy,
    SubAccount,
)

from .conftest import PASSWORD, LiveApi, unique, unique_ip


class Blocking:
    """An AsyncClient behind Client's blocking interface, on one event loop of its own."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, live_api: LiveApi) -> Iterator[Any]:
    """connect(username, password=PASSWORD, url=None, **options) -> a client of either kind."""
    opened: list[Any] = []

    def make(
        username: str, password: str = PASSWORD, url: str | None = None, **options: Any
    ) -> Any:
        options.setdefault("verify", live_api.cert)
        args = (url or live_api.url, username, password)
        client = Client(*args, **options) if request.param == "sync" else Blocking(
            AsyncClient(*args, **options)
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture
def api(connect: Any, parent: str) -> Any:
    return connect(parent)


def test_sub_account_lifecycle(api: Any) -> None:
    name = unique("pm_alice")
    created = api.create_sub_account(
        name, password="s3cret-pass", first_name="Alice", last_name="Liddell",
        email="alice@example.com", monthly_limit=5, total_limit=50,
    )
    assert created == SubAccount(
        name, True, 0.0, 5, 0.0, 50, first_name="Alice", last_name="Liddell",
        email="alice@example.com",
    )
    assert api.get_sub_account(name) == created

    edited = api.edit_sub_account(name, monthly_limit=10, email="", last_name="L.")
    assert (edited.monthly_bandwidth_limit, edited.total_bandwidth_limit) == (10, 50)
    assert (edited.email, edited.last_name, edited.first_name) == (None, "L.", "Alice")

    assert api.deactivate(name).active is False
    assert api.get_sub_account(name).active is False
    assert api.activate(name).active is True

    assert api.delete_sub_account(name) is None
    with pytest.raises(NotFound):
        api.get_sub_account(name)


def test_listing_sub_accounts_page_by_page(api: Any) -> None:
    names = sorted(unique("pm_list") for _ in range(5))
    for name in names:
        api.create_sub_account(name)
    page = api.list_sub_accounts(offset=1, limit=2)
    assert (page.total, page.offset, page.limit) == (5, 1, 2)
    assert [a.username for a in page.sub_accounts] == names[1:3]
    assert page.next_offset == 3
    everyone = api.all_sub_accounts(page_size=2)
    assert [a.username for a in everyone] == names
    assert all(isinstance(a, SubAccount) and a.total_bandwidth == 0.0 for a in everyone)


def test_authenticated_ips(api: Any) -> None:
    sub = api.create_sub_account(unique("pm_ip")).username
    own, n = unique_ip(), unique("")
    assert api.add_ip(own) == own
    assert api.add_ip(f"2001:DB8:0:0::{n}", username=sub) == f"2001:db8::{n}"  # normalised
    assert api.list_ips() == [own]
    assert api.list_ips(username=sub) == [f"2001:db8::{n}"]
    with pytest.raises(FormError) as taken:
        api.add_ip(own, username=sub)
    assert "ip" in taken.value.errors
    assert api.delete_ip(own) is None
    assert api.list_ips() == []
    with pytest.raises(FormError):
        api.delete_ip(own)
    api.delete_ip(f"2001:db8::{n}", username=sub)


def test_authenticated_hostnames(api: Any) -> None:
    sub = api.create_sub_account(unique("pm_host")).username
    domain = f"{unique('office')}.example.net"
    assert api.add_hostname(domain, username=sub) == domain
    assert api.list_hostnames(username=sub) == [domain]
    assert api.list_hostnames() == []
    with pytest.raises(FormError) as taken:
        api.add_hostname(domain)
    assert "domain" in taken.value.errors
    assert api.delete_hostname(domain, username=sub) is None
    with pytest.raises(FormError):
        api.delete_hostname(domain, username=sub)


def test_proxies_and_geoips(api: Any) -> None:
    assert sorted(api.proxies()) == ["open.proxymesh.test:31280", "world.proxymesh.test:31281"]
    assert api.add_proxy("plain") == "plain.proxymesh.test"
    assert api.add_proxy("plain.proxymesh.test:31282") == "plain.proxymesh.test"  # no change
    assert "plain.proxymesh.test:31282" in api.proxies()
    assert api.delete_proxy("plain") is None
    assert "plain.proxymesh.test:31282" not in api.proxies()
    with pytest.raises(FormError):
        api.add_proxy("nowhere")
    assert api.geoips("open") == {"US": 2, "DE": 1}
    assert api.geoips("world") == {"GB": 1}
    with pytest.raises(NotFound):
        api.geoips("plain")


def test_form_error_carries_field_errors(api: Any) -> None:
    with pytest.raises(FormError) as caught:
        api.create_sub_account("bad name!", monthly_limit=-1)
    assert caught.value.status == 400
    assert set(caught.value.errors) == {"username", "monthly_limit"}


def test_wrong_password_is_401(connect: Any, parent: str) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        connect(parent, "wrong password").proxies()
    assert caught.value.status == 401
    assert caught.value.headers["www-authenticate"].startswith("Basic")


def test_plan_limits_are_402(connect: Any, live_api: LiveApi) -> None:
    small = connect(live_api.parent(plan="single"))
    small.create_sub_account(unique("pm_one"))
    with pytest.raises(PaymentRequired) as caught:
        small.create_sub_account(unique("pm_two"))
    assert caught.value.status == 402
    with pytest.raises(PaymentRequired):
        small.add_proxy("world")


def test_sub_account_credentials_and_foreign_sub_accounts_are_403(
    connect: Any, live_api: LiveApi, api: Any
) -> None:
    sub = api.create_sub_account(unique("pm_sub"), password="sub-password").username
    with pytest.raises(Forbidden):
        connect(sub, "sub-password").proxies()
    other = connect(live_api.parent())
    with pytest.raises(Forbidden):
        other.get_sub_account(sub)
    with pytest.raises(Forbidden):
        other.edit_sub_account(sub, monthly_limit=1)


def test_unknown_sub_account_is_404(api: Any) -> None:
    with pytest.raises(NotFound) as caught:
        api.deactivate(unique("pm_nobody"))
    assert caught.value.status == 404 and caught.value.detail


def test_wrong_method_is_405_through_the_low_level_request(api: Any) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        api.request("GET", "/api/sub/create/", {"username": "x"})
    assert caught.value.allowed == ["POST"]
    assert api.request("get", "/api/ips/") == {"ips": []}


def test_unknown_plan_is_503_with_retry_after(connect: Any, live_api: LiveApi) -> None:
    lost = connect(live_api.parent(plan="discontinued"))
    with pytest.raises(PlanUnavailable) as caught:
        lost.create_sub_account(unique("pm_x"))
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_plain_http_is_302_to_https(connect: Any, live_api: LiveApi, parent: str) -> None:
    plain = connect(parent, url=live_api.plain_url)
    with pytest.raises(HttpsRequired) as caught:
        plain.get_sub_account("pm_any")
    assert caught.value.status == 302
    location = caught.value.location or ""
    assert location.startswith("https://") and location.endswith("/api/sub/get/?username=pm_any")


def test_tls_verification(connect: Any, live_api: LiveApi, parent: str) -> None:
    with pytest.raises(CertificateNotTrusted, match="CERTIFICATE_VERIFY_FAILED"):
        connect(parent, verify=True, retry=RetryPolicy(retries=0)).proxies()
    assert issubclass(CertificateNotTrusted, NetworkError)
    assert connect(parent, verify=False).list_ips() == []
    assert connect(parent, verify=str(live_api.cert)).list_ips() == []


def test_connection_refused_is_a_network_error_after_bounded_retries(
    connect: Any, parent: str, unused_port: int
) -> None:
    client = connect(parent, url=f"https://127.0.0.1:{unused_port}",
                     retry=RetryPolicy(retries=2, backoff=0.01))
    with pytest.raises(NetworkError) as caught:
        client.proxies()
    assert not isinstance(caught.value, CertificateNotTrusted)


def test_results_equal_the_raw_http_answers(api: Any, live_api: LiveApi, parent: str) -> None:
    """What the client returns is what the API said, and its errors carry the same status."""
    name = api.create_sub_account(unique("pm_raw"), first_name="Raw", total_limit=3).username
    api.add_ip(unique_ip(), username=name)
    with httpx.Client(base_url=live_api.url, auth=(parent, PASSWORD), verify=ssl_context(
        live_api
    )) as raw:

        def get(path: str, **params: str) -> Any:
            return raw.get(path, params=params).json()

        assert api.get_sub_account(name).to_json() == get("/api/sub/get/", username=name)
        assert {"ips": api.list_ips(username=name)} == get("/api/ips/", username=name)
        assert {"domains": api.list_hostnames()} == get("/api/hostnames/")
        assert {"proxies": api.proxies()} == get("/api/proxies/")
        assert api.geoips("open") == get("/api/geoips/open/")
        page = get("/api/sub/list/", limit="10")
        assert [a.to_json() for a in api.all_sub_accounts()] == page["sub_accounts"]
        for path, params in [("/api/sub/get/", {"username": "pm_none"}), ("/api/geoips/x/", {})]:
            answer = raw.get(path, params=params)
            with pytest.raises(ApiError) as caught:
                api.request("GET", path, params)
            assert (caught.value.status, caught.value.body) == (answer.status_code, answer.json())


def ssl_context(live_api: LiveApi) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(live_api.cert))
