"""The API over a proxy node's store, in the node's process: `meshproxy serve`'s two faces
(or, on PostgreSQL, an API node beside a proxy node). Import the fixture to use it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from meshproxy.api.app import create_app
from meshproxy.api.server import ApiServer

from .conftest import Env, LoopThread


@pytest.fixture
def api_base(env: Env, proxy_thread: LoopThread) -> Iterator[str]:
    """The base URL of an API (plain HTTP) over `env`'s store, with `env`'s settings."""
    settings = env.node.settings.model_copy(
        update={
            "api": env.node.settings.api.model_copy(
                update={"listen": "127.0.0.1", "https_port": 0, "tls": False,
                        "require_https": False}
            )
        }
    )
    server = ApiServer(settings, create_app(settings, env.store))
    ports = proxy_thread.run(server.start())
    yield f"http://127.0.0.1:{ports.https}"
    proxy_thread.run(server.stop())


def api_client(base: str, username: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=base, auth=(username, password), timeout=10)
