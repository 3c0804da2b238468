"""X-ProxyMesh-Country on a geo proxy whose egress countries come from a GeoIP database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from meshproxy.config import Settings
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store

from .conftest import Env, LoopThread, Origins

POOL = [f"127.0.0.{i}" for i in range(2, 10)]
DATABASE = {"127.0.0.2/31": "DE", "127.0.0.4/31": "JP", "127.0.0.6/31": "US"}


@pytest.fixture
def geo_env(
    make_settings: Callable[..., Settings],
    make_geoip_database: Callable[[dict[str, str]], Path],
    store: Store,
    proxy_thread: LoopThread,
    origins: Origins,
) -> Iterator[Env]:
    """`open` (geo) over 127.0.0.2-9, countries from the database except 127.0.0.6, which
    the configuration puts in DE; 127.0.0.8-9 are in no country."""
    egress: list[dict[str, str]] = [{"address": a} for a in POOL]
    egress[4]["country"] = "DE"
    settings = make_settings(
        geoip_database=str(make_geoip_database(DATABASE)),
        proxies=[
            {"name": "open", "geo": True, "listen_port": 0, "egress": egress},
        ],
        plans=[{"name": "default", "default_proxies": ["open"]}],
    )
    node = ProxyNode(settings, store)
    proxy_thread.run(node.start())
    environment = Env(node, store, proxy_thread, origins)
    environment.account("alice", proxies=("open",))
    environment.sync()
    yield environment
    proxy_thread.run(node.stop(1.0))


def peers(env: Env, country: str, tries: int) -> set[str]:
    """The source addresses the echo origin saw for requests asking for `country`."""
    seen = set()
    for _ in range(tries):
        response = requests.get(
            env.origins.url("/echo"),
            proxies={"http": env.proxy_url()},
            headers={"X-ProxyMesh-Country": country},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["peer"] == response.headers["X-ProxyMesh-IP"]
        seen.add(response.json()["peer"])
    return seen


def test_country_choice_uses_the_database_and_the_configuration_wins(geo_env: Env) -> None:
    assert peers(geo_env, "DE", tries=40) == {"127.0.0.2", "127.0.0.3", "127.0.0.6"}
    assert peers(geo_env, "jp", tries=25) == {"127.0.0.4", "127.0.0.5"}
    assert peers(geo_env, "US", tries=5) == {"127.0.0.7"}


def test_a_country_the_database_gives_no_egress_ip_is_refused(geo_env: Env) -> None:
    response = requests.get(
        geo_env.origins.url("/echo"),
        proxies={"http": geo_env.proxy_url()},
        headers={"X-ProxyMesh-Country": "FR"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.headers["X-ProxyMesh-Error"] == "no egress IP in country FR on this proxy"
