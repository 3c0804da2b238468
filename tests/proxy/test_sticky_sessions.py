"""Sticky sessions through a real node: new connections each time, real clients."""

from __future__ import annotations

import requests

from .clients import curl
from .conftest import Env, country_of, echo_json


def fresh_get(env: Env, user: str, headers: dict[str, str] | None = None) -> requests.Response:
    with requests.Session() as client:  # a new connection each time
        proxies = {"http": env.proxy_url(user=user)}
        return client.get(env.origins.url("/echo"), proxies=proxies, timeout=10,
                          headers=headers)


def test_a_username_session_keeps_its_egress_over_20_new_connections(env: Env) -> None:
    peers = set()
    for _ in range(20):
        response = fresh_get(env, "alice-session-abc123-sesstime-30")
        assert response.status_code == 200, response.text
        assert response.headers["X-ProxyMesh-IP"] == response.json()["peer"]
        peers.add(response.json()["peer"])
    assert len(peers) == 1
    tunnels = set()
    for _ in range(20):  # CONNECT tunnels of the same session: the same egress
        proxy = env.proxy_url(user="alice-session-abc123-sesstime-30")
        result = curl("-i", "--proxytunnel", "-x", proxy,
                      f"http://127.0.0.1:{env.origins.http}/echo")
        assert result.returncode == 0, result.stderr
        tunnels.add(echo_json(result.stdout.rpartition(b"\r\n\r\n")[2])["peer"])
    assert tunnels == peers


def test_sessions_differ_and_combine_with_a_country(env: Env) -> None:
    many = {fresh_get(env, f"alice-session-s{n}").json()["peer"] for n in range(20)}
    assert len(many) > 5  # different sessions spread over the pool
    german = {fresh_get(env, "alice-country-de-session-x1").json()["peer"] for _ in range(20)}
    assert len(german) == 1 and country_of(german.pop()) == "DE"


def test_the_session_header_does_the_same(env: Env) -> None:
    headers = {"X-ProxyMesh-Session": "hdr.1", "X-ProxyMesh-Session-Time": "15"}
    peers = {fresh_get(env, "alice", headers=headers).json()["peer"] for _ in range(20)}
    assert len(peers) == 1
    bad = fresh_get(env, "alice", headers={"X-ProxyMesh-Session": "a b"})
    assert bad.status_code == 400
