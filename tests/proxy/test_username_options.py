"""Options in the proxy username through a real node, with curl and requests."""

from __future__ import annotations

import requests

from .clients import curl
from .conftest import Env, country_of, echo_json
from .test_geoip import geo_env

__all__ = ["geo_env"]  # a fixture


def get(
    env: Env, user: str, password: str = "pw", headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.get(
        env.origins.url("/echo"), proxies={"http": env.proxy_url(user=user, password=password)},
        timeout=10, headers=headers,
    )


def test_country_in_the_username_over_http_and_connect(env: Env) -> None:
    for _ in range(10):
        response = get(env, "alice-country-de")
        assert response.status_code == 200, response.text
        assert country_of(response.json()["peer"]) == "DE"
    for _ in range(5):
        result = curl("-i", "--proxytunnel", "-x", env.proxy_url(user="alice-cc-fr"),
                      f"http://127.0.0.1:{env.origins.http}/echo")
        assert result.returncode == 0, result.stderr
        peer = echo_json(result.stdout.rpartition(b"\r\n\r\n")[2])["peer"]
        assert country_of(peer) == "FR"


def test_usage_goes_to_the_account_and_headers_win(env: Env) -> None:
    before = env.usage("alice")
    for _ in range(5):
        response = get(env, "alice-country-de", headers={"X-ProxyMesh-Country": "FR"})
        assert country_of(response.json()["peer"]) == "FR"  # the header's, not the username's
    pinned = get(env, "alice-ip-127.0.0.3")
    assert pinned.json()["peer"] == pinned.headers["X-ProxyMesh-IP"] == "127.0.0.3"
    env.flush()
    assert env.usage("alice")[1] > before[1]


def test_a_bad_option_is_a_407_naming_it_and_a_literal_account_wins(env: Env) -> None:
    refused = get(env, "alice-colour-red")
    assert refused.status_code == 407
    assert refused.headers["X-ProxyMesh-Error"] == "unknown username option 'colour'"
    wrong = get(env, "alice-colour-red", password="nope")
    assert wrong.headers["X-ProxyMesh-Error"] == "invalid proxy credentials"
    env.account("alice-country-us", password="other", proxies=("open",))
    env.sync()
    literal = get(env, "alice-country-us", password="other")
    assert literal.status_code == 200  # its own password: the account of that name
    assert get(env, "alice-country-us").status_code == 407  # alice's password: not alice


def test_country_over_20_requests_on_a_geoip_proxy(geo_env: Env) -> None:
    """The GeoIP database's countries (test_geoip.py), asked for in the username."""
    peers = {get(geo_env, "alice-cc-jp").json()["peer"] for _ in range(20)}
    assert peers == {"127.0.0.4", "127.0.0.5"}
    assert get(geo_env, "alice-country-fr").headers["X-ProxyMesh-Error"] == (
        "no egress IP in country FR on this proxy"
    )
