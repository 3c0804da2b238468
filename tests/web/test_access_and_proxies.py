"""IPs, hostnames and proxies in the dashboard, through the API's control operations: the
same uniqueness rules and messages, "add my current IP", proxies within the plan's count,
the geo pools' country counts, and the API help with this installation's own URLs."""

from __future__ import annotations

import pytest

from meshproxy.domain.accounts import AccountRecord
from meshproxy.store import Store

from .helpers import PARENT_PASSWORD, Browser, make_sub


@pytest.fixture
def logged_in(browser: Browser, parent: AccountRecord) -> Browser:
    browser.login("pm_parent", PARENT_PASSWORD)
    return browser


def test_own_ips_and_hostnames(logged_in: Browser, parent: AccountRecord, store: Store) -> None:
    page = logged_in.get("/dashboard/access/").text
    assert "Add my current IP (testclient)" in page and "None." in page
    added = logged_in.post("/dashboard/access/ip/add/", {"ip": " ::ffff:10.0.0.1 "})
    assert added.status_code == 303
    assert store.access.list_ips(parent) == ["10.0.0.1"]  # normalised as by the API
    assert "The IP address ::ffff:10.0.0.1 was added." in logged_in.get("/dashboard/access/").text
    again = logged_in.post("/dashboard/access/ip/add/", {"ip": "10.0.0.1"})
    assert again.status_code == 400 and "This IP address is already authenticated." in again.text
    bad = logged_in.post("/dashboard/access/ip/add/", {"ip": "10.0.0.300"})
    assert "Enter a valid IPv4 or IPv6 address." in bad.text and 'value="10.0.0.300"' in bad.text
    logged_in.post("/dashboard/access/hostname/add/", {"domain": "Office.Example.COM."})
    assert store.access.list_hostnames(parent) == ["office.example.com"]
    missing = logged_in.post("/dashboard/access/hostname/delete/", {"domain": "nope.example"})
    assert "This hostname is not authenticated." in missing.text
    logged_in.post("/dashboard/access/ip/delete/", {"ip": "10.0.0.1"})
    logged_in.post("/dashboard/access/hostname/delete/", {"domain": "office.example.com"})
    assert store.access.list_ips(parent) == [] and store.access.list_hostnames(parent) == []
    assert logged_in.post("/dashboard/access/port/add/", {"ip": "1.2.3.4"}).status_code == 404


def test_add_my_current_ip_for_a_sub_account(
    logged_in: Browser, parent: AccountRecord, store: Store
) -> None:
    sub = make_sub(store, parent, "pm_a")
    page = logged_in.get("/dashboard/sub-accounts/pm_a/").text
    # The button posts the address the server sees (TestClient's peer is "testclient").
    assert 'name="ip" value="testclient"' in page
    # It says whose address it adds, and to whom (issue 12): the parent's own, to pm_a.
    assert "Add my current IP (testclient) to pm_a" in page
    assert "This is the address your browser connects from, not the sub-account" in page
    response = logged_in.post("/dashboard/sub-accounts/pm_a/ip/add/", {"ip": "192.0.2.5"})
    assert response.headers["location"] == "/dashboard/sub-accounts/pm_a/"
    assert store.access.list_ips(sub) == ["192.0.2.5"]
    clash = logged_in.post("/dashboard/access/ip/add/", {"ip": "192.0.2.5"})
    assert "This IP address is already authenticated." in clash.text  # held by pm_a
    error = logged_in.post("/dashboard/sub-accounts/pm_a/hostname/add/", {"domain": "-bad-"})
    assert error.status_code == 400 and "Enter a valid hostname." in error.text
    assert "pm_a" in error.text  # re-rendered on the sub-account's own page


def test_proxies_within_the_plan(logged_in: Browser, parent: AccountRecord, store: Store) -> None:
    page = logged_in.get("/dashboard/proxies/").text
    assert "<code>open.localhost:31280</code>" in page  # authorized, as domain:port
    assert "(1 of the 2 your plan allows)" in page
    assert '<option value="world">world.localhost:31281 (geo)</option>' in page
    assert logged_in.post("/dashboard/proxies/add/", {"proxy": "world"}).status_code == 303
    assert store.access.authorized_proxies(parent) == ["open", "world"]
    over = logged_in.post("/dashboard/proxies/add/", {"proxy": "fast"})
    assert over.status_code == 402 and "Your plan allows 2 proxies." in over.text
    unknown = logged_in.post("/dashboard/proxies/add/", {"proxy": "nowhere"})
    assert unknown.status_code == 400 and "Unknown proxy." in unknown.text
    logged_in.post("/dashboard/proxies/delete/", {"proxy": "world.localhost:31281"})
    assert store.access.authorized_proxies(parent) == ["open"]


def test_geo_pools_show_country_counts(logged_in: Browser) -> None:
    page = logged_in.get("/dashboard/proxies/").text
    assert '<th scope="row">US</th><td>2</td>' in page
    assert '<th scope="row">DE</th><td>1</td>' in page
    assert "No countries are configured for this pool." in page  # world has none


def test_api_help_uses_this_installations_urls(logged_in: Browser) -> None:
    page = logged_in.get("/dashboard/help/").text
    assert "curl -k -u pm_parent:PASSWORD https://127.0.0.1:8443/api/sub/create/" in page
    assert "curl -x http://pm_parent:PASSWORD@open.localhost:31280 https://example.com/" in page
    assert "/api/geoips/open/" in page
