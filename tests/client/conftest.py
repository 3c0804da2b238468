"""A running meshproxy API for the client: uvicorn with TLS (its generated self-signed
certificate) and a plain-HTTP port, on a real SQLite file, in a background event loop.

Parents are created through the Store; each test gets its own, so tests share the server
without sharing accounts. The ban threshold is high: 401 tests must not ban 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from meshproxy.api import create_app
from meshproxy.api.server import ApiPorts, ApiServer
from meshproxy.client import Client
from meshproxy.config import Settings, load_settings
from meshproxy.domain import passwords
from meshproxy.domain.accounts import UsageDelta
from meshproxy.store import Store

PASSWORD = "reseller secret 42"

SETTINGS: dict[str, Any] = {
    "proxy_domain": "proxymesh.test",
    "api": {"listen": "127.0.0.1", "https_port": 0, "http_port": 0},
    "ban": {"max_failures": 10_000},
    "plans": [
        {
            "name": "default",
            "max_sub_accounts": 50,
            "max_proxies": 3,
            "default_proxies": ["open", "world"],
        },
        {"name": "single", "max_sub_accounts": 1, "max_proxies": 1, "default_proxies": ["open"]},
    ],
    "proxies": [
        {
            "name": "open",
            "port": 31280,
            "geo": True,
            "egress": [
                {"address": "127.0.0.1", "country": "US"},
                {"address": "127.0.0.2", "country": "US"},
                {"address": "127.0.0.3", "country": "DE"},
            ],
        },
        {
            "name": "world",
            "port": 31281,
            "geo": True,
            "egress": [
                {"address": "127.0.1.1", "country": "GB"},
            ],
        },
        {"name": "plain", "port": 31282},
    ],
}

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def unique_ip(network: int = 10) -> str:
    """An IPv4 address no other test authenticates (IPs are unique across accounts)."""
    n = next(_names)
    return f"{network}.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"


def without_list_extension(app: ASGIApp) -> ASGIApp:
    """The API as ProxyMesh serves it: no GET /api/sub/list/ (meshproxy's extension)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/sub/list/":
            await JSONResponse({"error": "Not Found"}, status_code=404)(scope, receive, send)
        else:
            await app(scope, receive, send)

    return wrapped


@dataclass
class LiveApi:
    settings: Settings
    store: Store
    ports: ApiPorts
    cert: Path
    ports_without_list: ApiPorts  # a second server on the same store, without sub/list

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports.https}"

    @property
    def url_without_list(self) -> str:
        return f"https://127.0.0.1:{self.ports_without_list.https}"

    def use(self, username: str, gb: float) -> None:
        """Meter `gb` of proxy traffic to an account today, as the proxies would."""
        account = self.store.accounts.get(username)
        assert account is not None
        delta = UsageDelta(account.id, account.parent_id, round(gb * 10**9))
        self.store.usage.record([delta], datetime.now(UTC).date())

    @property
    def plain_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def parent(self, plan: str = "default") -> str:
        """A new parent account (password PASSWORD) on `plan`, which may be unknown."""
        username = unique("reseller")
        known = self.settings.plan(plan)
        self.store.accounts.create(
            username,
            password_hash=passwords.hash_password(PASSWORD),
            plan=plan,
            billing_day=1,
            proxies=known.default_proxies if known else [],
        )
        return username

    def client(self, username: str, password: str = PASSWORD, **options: Any) -> Client:
        return Client(self.url, username, password, verify=self.cert, **options)


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory, fast_hashing: None) -> Iterator[LiveApi]:
    directory = tmp_path_factory.mktemp("client-api")
    settings = load_settings(None, **{**SETTINGS, "data_dir": str(directory / "data")})
    store = Store.open(f"sqlite:///{directory / 'store.sqlite3'}")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = create_app(settings, store)
    servers = [ApiServer(settings, app), ApiServer(settings, without_list_extension(app))]
    ports = [asyncio.run_coroutine_threadsafe(s.start(), loop).result(30) for s in servers]
    cert = settings.data_dir / "tls" / "api-cert.pem"
    try:
        yield LiveApi(settings, store, ports[0], cert, ports[1])
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        store.close()


@pytest.fixture
def parent(live_api: LiveApi) -> str:
    return live_api.parent()


@pytest.fixture
def api(live_api: LiveApi, parent: str) -> Iterator[Client]:
    with live_api.client(parent) as client:
        yield client


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
