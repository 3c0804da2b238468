"""A node whose proxies also listen for SOCKS5 and TLS (HTTPS proxy) clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshproxy.api.tls import ensure_certificate
from meshproxy.config import Settings
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store

from .conftest import EGRESS, Env, LoopThread, Origins, country_of

# Any free port for each: the node reports them (socks_addresses, tls_addresses).
EXTRA = {"socks_port": 31380, "socks_listen_port": 0, "tls_port": 31480, "tls_listen_port": 0}


def listener_settings(make_settings: Callable[..., Settings], **behaviour: Any) -> Settings:
    """conftest.proxy_settings' three proxies, each with a SOCKS5 and a TLS listener."""
    return make_settings(
        proxy={"flush_interval": 0.25, "quota_check_interval": 0.25, **behaviour},
        ban={"max_failures": 4, "window_seconds": 600, "ban_seconds": 10_800},
        proxies=[
            {"name": "open", "geo": True, "port": 31280, "listen_port": 0, **EXTRA,
             "egress": [{"address": a, "country": country_of(a)} for a in EGRESS]},
            {"name": "world", "port": 31281, "listen_port": 0, **EXTRA, "egress": [{}]},
            {"name": "private", "port": 31282, "listen_port": 0, **EXTRA, "egress": [{}]},
        ],
    )


@pytest.fixture
def start_listeners(
    make_settings: Callable[..., Settings], store: Store, proxy_thread: LoopThread,
    origins: Origins,
) -> Iterator[Callable[..., Env]]:
    nodes: list[ProxyNode] = []

    def start(**behaviour: Any) -> Env:
        settings = listener_settings(make_settings, **behaviour)
        # The API's certificate, as the command gives it (a self-signed one generated here).
        node = ProxyNode(settings, store, certificate=ensure_certificate(settings))
        proxy_thread.run(node.start())
        nodes.append(node)
        environment = Env(node, store, proxy_thread, origins)
        environment.account("alice")
        environment.sync()
        return environment

    yield start
    for node in nodes:
        proxy_thread.run(node.stop(1.0))


@pytest.fixture
def socks_env(start_listeners: Callable[..., Env]) -> Env:
    return start_listeners()


def socks_url(env: Env, user: str | None = "alice", password: str = "pw",
              proxy: str = "open", scheme: str = "socks5h") -> str:
    host, port = env.node.socks_addresses[proxy]
    auth = f"{user}:{password}@" if user is not None else ""
    return f"{scheme}://{auth}{host}:{port}"


@pytest.fixture
def tls_env(start_listeners: Callable[..., Env]) -> Env:
    return start_listeners()


def tls_url(env: Env, user: str | None = "alice", password: str = "pw",
            proxy: str = "open") -> str:
    host, port = env.node.tls_addresses[proxy]
    auth = f"{user}:{password}@" if user is not None else ""
    return f"https://{auth}{host}:{port}"


def proxy_ca(env: Env) -> Path:
    """The certificate the TLS listeners present (the API's, generated self-signed)."""
    return ensure_certificate(env.node.settings)[0]
